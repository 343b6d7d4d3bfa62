"""MedCLIP (ResNet, Swin) and GLoRIA adapters: tiny variants, official key layouts, GLoRIA's similarity, prompts."""

from __future__ import annotations

import json
import math

import pytest
import torch

from benchmark.core.schema import ALL_LABEL_COLUMNS, LABEL_COLUMNS
from benchmark.core.errors import BenchError
from extractors import load_encoder
from extractors.clinical_bert import drop_legacy_buffers, load_tokenizer
from extractors.families.gloria import gloria_similarity, word_slots
from extractors.prompts import prompt_set
from extractors.registry import get_spec
from extractors.resnet_backbone import BottleneckResNet

TINY = ("tiny-medclip-rn", "tiny-medclip-vit", "tiny-gloria")
PROMPTS = ["mild atelectasis at the lung bases", "Enlarged heart.", "small left pleural effusion"]


@pytest.fixture(scope="module")
def encoders():
    return {name: load_encoder(name) for name in TINY}


def pixels(spec_name: str, batch: int = 3, seed: int = 0) -> torch.Tensor:
    size = get_spec(spec_name).preprocess.pixel_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, size, size), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("name", TINY)
def test_tiny_variant_shapes_and_dtypes(encoders, name):
    encoder = encoders[name]
    images = encoder.preprocess(pixels(name))
    with torch.inference_mode():
        image_out = encoder.encode_image(images)
        text_out = encoder.encode_text(PROMPTS)
    assert encoder.weights_tag == "random-init"
    assert image_out["embedding"].shape == (3, encoder.embed_dim)
    assert image_out["embedding"].dtype == torch.float32
    assert text_out["embedding"].shape == (len(PROMPTS), encoder.spec.text_embed_dim)
    assert torch.isfinite(image_out["embedding"]).all() and torch.isfinite(text_out["embedding"]).all()
    if name == "tiny-gloria":
        assert images.shape == (3, 3, 75, 75)  # crop 56, upsample to 75 (GLoRIA's 224 -> 299, scaled)
        regions = image_out["local"]
        assert regions.shape[0] == 3 and regions.shape[2] == encoder.embed_dim and regions.shape[1] > 1
        assert text_out["words"].shape == (len(PROMPTS), 97, encoder.embed_dim)
        assert text_out["word_mask"].dtype == torch.bool
        assert text_out["word_mask"].sum(1).tolist() == [6, 2, 4]
    else:
        assert images.shape == (3, 1, 64, 64)  # one channel, repeated to three inside the model


@pytest.mark.parametrize("name", TINY)
def test_tiny_variant_is_deterministic_without_touching_global_rng(encoders, name):
    state_before = torch.get_rng_state()
    again = load_encoder(name)
    assert torch.equal(torch.get_rng_state(), state_before)
    first = encoders[name].state_dict()
    second = again.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    images = again.preprocess(pixels(name))
    with torch.inference_mode():
        assert torch.equal(encoders[name].encode_image(images)["embedding"], again.encode_image(images)["embedding"])


def test_tiny_variants_differ_from_each_other(encoders):
    rn = encoders["tiny-medclip-rn"].model.text_model.model.embeddings.word_embeddings.weight
    gloria = encoders["tiny-gloria"].model.text_encoder.model.embeddings.word_embeddings.weight
    assert not torch.equal(rn, gloria)  # different init seeds


def test_default_bottleneck_resnet_is_torchvision_resnet50():
    from torchvision.models import resnet50

    ours = BottleneckResNet().state_dict()
    theirs = resnet50(weights=None).state_dict()
    theirs = {k: v for k, v in theirs.items() if not k.startswith("fc.")}  # families replace fc
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def test_official_gloria_image_encoder_geometry():
    """Full-size GLoRIA image path: 256-px store -> crop 224 -> 299 -> 19x19 local regions of width 768."""
    from extractors.families.gloria import GloriaImageEncoder
    from extractors.preprocess import apply_preprocess

    spec = get_spec("gloria")
    images = apply_preprocess(spec.preprocess, torch.zeros(1, 256, 256, dtype=torch.uint8))
    assert images.shape == (1, 3, 299, 299)
    assert images.min().item() == -1.0  # Normalize(0.5, 0.5) of black
    resnet = spec.extra["resnet"]
    tower = GloriaImageEncoder(768, blocks=resnet["blocks"], widths=resnet["widths"], stem_width=resnet["stem_width"])
    assert tower.global_embedder.in_features == 2048 and tower.local_embedder.in_channels == 1024
    with torch.inference_mode():
        global_embedding, local = tower.eval().global_and_local(images)
    assert global_embedding.shape == (1, 768) and local.shape == (1, 19 * 19, 768)


def test_official_medclip_vit_is_swin_tiny():
    from extractors.families.medclip import MedClipSwinVision

    tower = MedClipSwinVision(512, get_spec("medclip-vit").extra["swin"])
    assert tower.model.num_features == 768
    assert tower.projection_head.weight.shape == (512, 768) and tower.projection_head.bias is None
    parameters = sum(p.numel() for p in tower.model.parameters())
    assert 27_000_000 < parameters < 28_500_000  # Swin-T has ~28M parameters
    assert "encoder.layers.2.blocks.5.attention.q_proj.weight" in tower.model.state_dict()


# --- official checkpoint layouts -------------------------------------------------------------------------

SWIN_CURRENT_TO_TRANSFORMERS_4 = [
    (".attention.q_proj.", ".attention.self.query."),
    (".attention.k_proj.", ".attention.self.key."),
    (".attention.v_proj.", ".attention.self.value."),
    (".attention.relative_position_bias.relative_position_bias_table", ".attention.self.relative_position_bias_table"),
    (".attention.o_proj.", ".attention.output.dense."),
    (".mlp.fc1.", ".intermediate.dense."),
    (".mlp.fc2.", ".output.dense."),
]


def perturbed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy with every float tensor changed, so a successful load is visible in the outputs."""
    return {k: (v + 0.01 if v.is_floating_point() else v.clone()) for k, v in state.items()}


def medclip_official_layout(encoder) -> dict[str, torch.Tensor]:
    """What MedCLIP's pytorch_model.bin looks like: transformers-4 names and buffers, official prefixes."""
    state = perturbed(encoder.model.state_dict())
    official = {}
    for key, value in state.items():
        for new, old in SWIN_CURRENT_TO_TRANSFORMERS_4:
            if key.startswith("vision_model.model.encoder.") and new in key:
                key = key.replace(new, old)
                break
        official[key] = value
    official["text_model.model.embeddings.position_ids"] = torch.arange(128).unsqueeze(0)
    if encoder.spec.extra["vision"] == "swin":
        official["vision_model.model.encoder.layers.0.blocks.0.attention.self.relative_position_index"] = torch.zeros(
            16, 16, dtype=torch.long
        )
    return official


@pytest.mark.parametrize("name", ["tiny-medclip-rn", "tiny-medclip-vit"])
def test_medclip_official_layout_loads_strictly(encoders, name, tmp_path):
    official = medclip_official_layout(encoders[name])
    assert any(key.startswith("vision_model.model.") for key in official)
    assert "text_model.projection_head.weight" in official and "logit_scale" in official
    if name == "tiny-medclip-vit":
        assert any(".attention.self.query." in key for key in official)
    path = tmp_path / "pytorch_model.bin"
    torch.save(official, path)
    loaded = load_encoder(name, weights=path)
    assert loaded.weights_tag == "local:pytorch_model.bin" and len(loaded.weights_digest) == 64
    expected = perturbed(encoders[name].model.state_dict())
    actual = loaded.model.state_dict()
    assert all(torch.equal(actual[key], expected[key]) for key in expected)


def test_medclip_wrong_checkpoint_lists_keys(encoders, tmp_path):
    official = medclip_official_layout(encoders["tiny-medclip-rn"])
    del official["text_model.projection_head.weight"]
    official["vision_model.extra_head.weight"] = torch.zeros(2, 2)
    path = tmp_path / "pytorch_model.bin"
    torch.save(official, path)
    with pytest.raises(BenchError) as error:
        load_encoder("tiny-medclip-rn", weights=path)
    assert "text_model.projection_head.weight" in str(error.value)
    assert "vision_model.extra_head.weight" in str(error.value)


def test_medclip_rn_checkpoint_does_not_load_into_vit(encoders, tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save(medclip_official_layout(encoders["tiny-medclip-rn"]), path)
    with pytest.raises(BenchError, match="missing keys"):
        load_encoder("tiny-medclip-vit", weights=path)


def test_only_legacy_buffers_are_dropped():
    state = {"a.embeddings.position_ids": 1, "b.relative_position_index": 2, "c.weight": 3, "d.unknown": 4}
    cleaned, dropped = drop_legacy_buffers(state, expected_keys={"c.weight"})
    assert sorted(dropped) == ["a.embeddings.position_ids", "b.relative_position_index"]
    assert cleaned == {"c.weight": 3, "d.unknown": 4}  # unknown keys stay for the strict load to report


class PickledTrainingConfig:
    """Stands in for the OmegaConf config GLoRIA's Lightning checkpoint pickles in `hyper_parameters`."""

    def __init__(self, values):
        self.values = values


def gloria_lightning_checkpoint(encoder, hyper_parameters) -> dict:
    state = {f"gloria.{key}": value for key, value in perturbed(encoder.model.state_dict()).items()}
    state["gloria.text_encoder.model.embeddings.position_ids"] = torch.arange(128).unsqueeze(0)
    return {"epoch": 12, "global_step": 3456, "state_dict": state, "hyper_parameters": hyper_parameters}


def test_gloria_lightning_checkpoint_loads_strictly(encoders, tmp_path):
    checkpoint = gloria_lightning_checkpoint(encoders["tiny-gloria"], {"model": {"text": {"last_n_layers": 4}}})
    assert any(key.startswith("gloria.img_encoder.local_embedder") for key in checkpoint["state_dict"])
    path = tmp_path / "chexpert_resnet50.ckpt"
    torch.save(checkpoint, path)
    loaded = load_encoder("tiny-gloria", weights=path)
    expected = perturbed(encoders["tiny-gloria"].model.state_dict())
    actual = loaded.model.state_dict()
    assert all(torch.equal(actual[key], expected[key]) for key in expected)


def test_gloria_checkpoint_with_pickled_config_needs_trust(encoders, tmp_path):
    checkpoint = gloria_lightning_checkpoint(encoders["tiny-gloria"], PickledTrainingConfig({"temp1": 4.0}))
    path = tmp_path / "chexpert_resnet50.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(BenchError, match="trust-checkpoint"):
        load_encoder("tiny-gloria", weights=path)
    trusted = load_encoder("tiny-gloria", weights=path, trust_checkpoint=True)
    key = "img_encoder.global_embedder.weight"
    assert torch.equal(trusted.model.state_dict()[key], checkpoint["state_dict"][f"gloria.{key}"])


def test_gloria_checkpoint_without_gloria_prefix_is_refused(encoders, tmp_path):
    path = tmp_path / "chexpert_resnet50.ckpt"
    torch.save({"state_dict": encoders["tiny-medclip-rn"].model.state_dict()}, path)
    with pytest.raises(BenchError, match="gloria.img_encoder"):
        load_encoder("tiny-gloria", weights=path)


def test_missing_tokenizer_names_the_files_and_places(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(BenchError) as error:
        load_tokenizer("nobody/No_Such_ClinicalBERT", near=tmp_path)
    message = str(error.value)
    assert "vocab.txt" in message and "No_Such_ClinicalBERT" in message and str(tmp_path) in message


def test_tokenizer_found_next_to_the_weights(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nheart\nlarge\n")
    tokenizer = load_tokenizer("emilyalsentzer/Bio_ClinicalBERT", near=tmp_path)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Large heart")["input_ids"])
    assert tokens == ["[CLS]", "large", "heart", "[SEP]"]


# --- text towers -----------------------------------------------------------------------------------------


def test_medclip_text_embedding_does_not_depend_on_batching(encoders):
    encoder = encoders["tiny-medclip-rn"]
    with torch.inference_mode():
        alone = encoder.encode_text(["small effusion"])["embedding"]
        batched = encoder.encode_text(["small effusion", "persistent severe cardiomegaly with prominent upper lobe"])
    torch.testing.assert_close(batched["embedding"][:1], alone, rtol=1e-5, atol=1e-6)


def test_medclip_repeats_one_channel_to_three(encoders):
    encoder = encoders["tiny-medclip-vit"]
    images = encoder.preprocess(pixels("tiny-medclip-vit"))
    with torch.inference_mode():
        one = encoder.encode_image(images)["embedding"]
        three = encoder.encode_image(images.repeat(1, 3, 1, 1))["embedding"]
    torch.testing.assert_close(one, three)


def test_gloria_word_slots_merge_word_pieces():
    slots, n_words = word_slots(["[CLS]", "enla", "##rged", "heart", "[SEP]", "[PAD]", "[PAD]"])
    assert slots == [0, 1, 1, 2, 3, -1, -1]
    assert n_words == 2


def test_gloria_words_are_summed_pieces_of_last_four_layers(encoders):
    encoder = encoders["tiny-gloria"]
    tokenizer = encoder.tokenizer
    assert tokenizer.tokenize("enlarged heart") == ["enla", "##rged", "heart"]
    with torch.inference_mode():
        out = encoder.encode_text(["Enlarged heart."])
        ids = tokenizer(["enlarged heart"], padding="max_length", max_length=97, return_tensors="pt")
        hidden = encoder.model.text_encoder.model(**ids, output_hidden_states=True).hidden_states
    tokens = torch.stack(hidden[-4:]).sum(0)[0]  # [T, H]
    words = out["words"][0]
    torch.testing.assert_close(words[1], tokens[1] + tokens[2], rtol=1e-5, atol=1e-5)  # "enla" + "##rged"
    torch.testing.assert_close(words[2], tokens[3], rtol=1e-5, atol=1e-5)  # "heart"
    assert torch.count_nonzero(words[5:]) == 0  # nothing after [SEP] (slot 3)
    torch.testing.assert_close(out["embedding"][0], words.sum(0) / 97, rtol=1e-5, atol=1e-6)


# --- GLoRIA similarity on hand-made tensors ---------------------------------------------------------------


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_gloria_similarity_single_word_attends_uniformly():
    """One word: the first softmax (over words) is 1 everywhere, so the region attention is uniform."""
    image_local = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # 2 regions
    words = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [9.0, 9.0]]])  # slot 0 = [CLS], slot 2 masked out
    mask = torch.tensor([[False, True, False]])
    image_global = torch.tensor([[1.0, 0.0]])
    text_global = torch.tensor([[1.0, 1.0]])
    score = gloria_similarity(image_global, image_local, text_global, words, mask)
    local = 5 * cosine([1, 0], [0.5, 0.5])
    expected = (cosine([1, 0], [1, 1]) + local) / 2
    assert score.shape == (1, 1)
    assert score.item() == pytest.approx(expected, rel=1e-5)


def test_gloria_similarity_two_words_matches_hand_computation():
    image_local = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])
    words = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    mask = torch.tensor([[False, True, True]])
    image_global = torch.tensor([[3.0, 4.0]])
    text_global = torch.tensor([[3.0, 4.0]])
    # region r attends over words: softmax([2, 0]) = (p, 1 - p); word 1 over regions: softmax(4 * [p, 1 - p])
    p = 1 / (1 + math.exp(-2))
    q = 1 / (1 + math.exp(-4 * (2 * p - 1)))
    context_word1 = [2 * q, 2 * (1 - q)]  # word 2 is symmetric, same cosine
    local = 5 * cosine([1, 0], context_word1)
    score = gloria_similarity(image_global, image_local, text_global, words, mask)
    assert score.item() == pytest.approx((1.0 + local) / 2, rel=1e-5)


def test_gloria_similarity_shape_scale_invariance_and_masking():
    generator = torch.Generator().manual_seed(3)
    image_global, image_local = torch.randn(4, 8, generator=generator), torch.randn(4, 6, 8, generator=generator)
    text_global, words = torch.randn(5, 8, generator=generator), torch.randn(5, 10, 8, generator=generator)
    mask = torch.zeros(5, 10, dtype=torch.bool)
    mask[:, 1:4] = True
    score = gloria_similarity(image_global, image_local, text_global, words, mask)
    assert score.shape == (4, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = gloria_similarity(image_global.bfloat16(), image_local.bfloat16(), text_global, words.half(), mask)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, score, rtol=0.05, atol=0.05)
    rescaled = gloria_similarity(2 * image_global, image_local, 3 * text_global, words, mask)
    torch.testing.assert_close(score, rescaled)
    noisy = words.clone()
    noisy[:, 4:] = 100.0  # masked-out slots must not matter
    torch.testing.assert_close(score, gloria_similarity(image_global, image_local, text_global, noisy, mask))
    assert ((score >= -3.0) & (score <= 3.0)).all()  # (cos + 5 cos) / 2
    mask[2] = False
    with pytest.raises(ValueError, match="no words"):
        gloria_similarity(image_global, image_local, text_global, words, mask)


def test_gloria_similarity_on_encoder_outputs(encoders):
    encoder = encoders["tiny-gloria"]
    with torch.inference_mode():
        image = encoder.encode_image(encoder.preprocess(pixels("tiny-gloria", batch=2)))
        text = encoder.encode_text(PROMPTS)
    score = gloria_similarity(image["embedding"], image["local"], text["embedding"], text["words"], text["word_mask"])
    assert score.shape == (2, len(PROMPTS)) and torch.isfinite(score).all()


# --- LoRA targets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_lora_targets_wrap_the_image_tower(encoders, name):
    import copy

    from peft import LoraConfig, get_peft_model

    encoder = copy.deepcopy(encoders[name])
    tower = encoder.image_tower()
    tower.requires_grad_(False)
    peft_model = get_peft_model(tower, LoraConfig(r=2, lora_alpha=2, target_modules=encoder.lora_targets))
    wrapped = {path.split(".")[-1] for path, module in peft_model.named_modules() if hasattr(module, "lora_A")}
    assert wrapped == set(encoder.lora_targets)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    assert trainable and all(p.requires_grad for n, p in peft_model.named_parameters() if "lora_" in n)
    peft_model.train()
    embedding = encoder.encode_image(encoder.preprocess(pixels(name, batch=2)))["embedding"]
    embedding.square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)


# --- prompts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, per_class", [("tiny-medclip-rn", 10), ("tiny-gloria", 5)])
def test_generated_prompts_cover_every_label_and_are_reproducible(name, per_class):
    spec = get_spec(name)
    prompts = prompt_set(spec)
    assert [p.class_name for p in prompts] == sorted((p.class_name for p in prompts), key=LABEL_COLUMNS.index)
    counts = {c: sum(p.class_name == c for p in prompts) for c in LABEL_COLUMNS}
    assert all(1 <= n <= per_class for n in counts.values())
    assert counts["Atelectasis"] == per_class and counts["No_Finding"] == min(7, per_class)
    assert prompt_set(spec) == prompts
    cardiomegaly = [p.text for p in prompts if p.class_name == "Cardiomegaly"]
    assert all(text == text.strip() and "  " not in text for text in cardiomegaly)
    assert {p.polarity for p in prompts} == {"pos"}


def test_prompt_file_is_user_replaceable(tmp_path):
    spec = get_spec("tiny-gloria")
    data = {
        "style": "gloria",
        "n_prompts": 2,
        "sample_seed": 1,
        "classes": {"Mass": {"parts": [["", "large"], ["mass"], ["in the left lung", "in the right lung"]]}},
    }
    path = tmp_path / "gloria.json"
    path.write_text(json.dumps(data))
    prompts = prompt_set(spec, ["Mass"], path=path)
    all_four = {f"{size}mass in the {side} lung" for size in ("", "large ") for side in ("left", "right")}
    assert len(prompts) == 2 and {p.text for p in prompts} <= all_four
    with pytest.raises(BenchError, match="Nodule"):
        prompt_set(spec, ["Mass", "Nodule"], path=path)
    data["classes"]["Mass"]["prts"] = data["classes"]["Mass"].pop("parts")
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="parts"):
        prompt_set(spec, ["Mass"], path=path)


def test_prompt_origins_are_documented():
    from extractors.prompts import prompt_file

    for name in ("medclip-vit", "gloria"):
        spec = get_spec(name)
        classes = json.loads(prompt_file(spec).read_text())["classes"]
        assert set(classes) == set(ALL_LABEL_COLUMNS)  # NIH's labels and CheXpert's / MIMIC's observations
        authors = {c for c, entry in classes.items() if entry["origin"].startswith("authors")}
        assert authors == {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Pleural_Effusion"}
        assert all(entry["origin"].startswith("cxr-fairbench") for c, entry in classes.items() if c not in authors)


def test_gloria_checkpoint_with_omegaconf_config_loads_safely(encoders, tmp_path, monkeypatch):
    """The official file pickles an OmegaConf config and Lightning callback classes: no trust flag needed."""
    import sys
    import types

    class DictConfig:
        def __init__(self, content):
            self._content = content

    class ModelCheckpoint:
        pass

    parents = ("omegaconf", "pytorch_lightning", "pytorch_lightning.callbacks")
    modules = {name: types.ModuleType(name) for name in parents}
    for module_name, cls in (
        ("omegaconf.dictconfig", DictConfig),
        ("pytorch_lightning.callbacks.model_checkpoint", ModelCheckpoint),
    ):
        module = types.ModuleType(module_name)
        cls.__module__, cls.__qualname__ = module_name, cls.__name__
        setattr(module, cls.__name__, cls)
        modules[module_name] = module
    for module_name, module in modules.items():
        monkeypatch.setitem(sys.modules, module_name, module)
    checkpoint = gloria_lightning_checkpoint(encoders["tiny-gloria"], DictConfig({"model": {"norm": False}}))
    checkpoint["hparams_type"] = DictConfig
    checkpoint["callbacks"] = {ModelCheckpoint: {"best_model_score": torch.tensor(0.5)}}
    path = tmp_path / "chexpert_resnet50.ckpt"
    torch.save(checkpoint, path)
    for module_name in modules:
        monkeypatch.delitem(sys.modules, module_name)  # as on a machine without omegaconf / pytorch_lightning

    loaded = load_encoder("tiny-gloria", weights=path)
    key = "img_encoder.global_embedder.weight"
    assert torch.equal(loaded.model.state_dict()[key], checkpoint["state_dict"][f"gloria.{key}"])


def test_checkpoint_referencing_other_globals_is_still_refused(encoders, tmp_path):
    import os

    checkpoint = gloria_lightning_checkpoint(encoders["tiny-gloria"], {"hook": os.system})
    path = tmp_path / "chexpert_resnet50.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(BenchError, match="trust-checkpoint"):
        load_encoder("tiny-gloria", weights=path)


def test_gloria_prompt_without_words_is_a_clear_error(encoders):
    with pytest.raises(BenchError, match="no words"):
        encoders["tiny-gloria"].encode_text(["mild atelectasis", "?!"])


def test_gloria_similarity_scores_each_prompt_as_if_alone(monkeypatch):
    """Prompts of different lengths scored together (and in several word groups) = each scored on its own."""
    import extractors.families.gloria as gloria

    generator = torch.Generator().manual_seed(5)
    image_global, image_local = torch.randn(3, 6, generator=generator), torch.randn(3, 4, 6, generator=generator)
    text_global, words = torch.randn(4, 6, generator=generator), torch.randn(4, 9, 6, generator=generator)
    mask = torch.zeros(4, 9, dtype=torch.bool)
    for prompt, n_words in enumerate((1, 5, 2, 7)):
        mask[prompt, 1 : 1 + n_words] = True
    together = gloria_similarity(image_global, image_local, text_global, words, mask)
    alone = torch.cat(
        [
            gloria_similarity(image_global, image_local, text_global[p : p + 1], words[p : p + 1], mask[p : p + 1])
            for p in range(4)
        ],
        dim=1,
    )
    torch.testing.assert_close(together, alone)
    monkeypatch.setattr(gloria, "MAX_WORDS_PER_PRODUCT", 6)
    assert gloria._prompt_groups([1, 5, 2, 7], 6) == [(0, 2), (2, 3), (3, 4)]
    torch.testing.assert_close(gloria_similarity(image_global, image_local, text_global, words, mask), together)
