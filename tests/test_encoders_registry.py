"""The encoder registry as data: complete entries, loud failures, and tiny variants that mirror the official layout."""

from __future__ import annotations

import importlib
import json
import re

import pytest
import torch

from benchmark.core.schema import LABEL_COLUMNS
from benchmark.core.errors import BenchError
from extractors.families import biomedclip, openclip
from extractors.prompts import prompt_set
from extractors.registry import REGISTRY, SPECS_DIR, get_spec, load_registry


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_is_buildable_and_has_prompts_for_every_label(name):
    spec = REGISTRY[name]
    adapter = importlib.import_module(f"extractors.families.{spec.family}")
    assert callable(adapter.build)
    if spec.zeroshot.ensemble == "none":  # vision only: no text tower, no prompt sets
        from extractors.embed import prompt_sets

        assert spec.text_embed_dim == 0 and prompt_sets(spec) == {}
    else:
        prompts = prompt_set(spec)
        assert {p.class_name for p in prompts} == set(LABEL_COLUMNS)
        assert all(p.polarity in ("pos", "neg") and p.text.strip() for p in prompts)
    assert spec.preprocess.pixel_size > 0 and spec.lora_targets
    json.dumps(spec.to_json())  # identities hash the spec as JSON


def test_chexzero_prompts_come_in_positive_negative_pairs():
    prompts = prompt_set(get_spec("chexzero"), ["Edema"])
    assert [(p.text, p.polarity) for p in prompts] == [("pulmonary edema", "pos"), ("no pulmonary edema", "neg")]
    biomed = prompt_set(get_spec("biomedclip"), ["Cardiomegaly"])
    assert [p.text for p in biomed] == ["this is a photo of cardiomegaly"]


def test_unknown_class_in_prompt_request_is_named():
    with pytest.raises(BenchError, match=r"no prompts for class\(es\) \['Sarcoidosis'\]"):
        prompt_set(get_spec("tiny-clip"), ["Edema", "Sarcoidosis"])


def _write_specs(tmp_path, mutate):
    entries = json.loads((SPECS_DIR / "openclip.json").read_text())
    mutate(entries)
    (tmp_path / "family.json").write_text(json.dumps(entries))
    return tmp_path


def test_a_misspelt_key_fails_loudly_naming_file_and_entry(tmp_path):
    folder = _write_specs(tmp_path, lambda entries: entries[0].update(pixelsize=224))
    with pytest.raises(BenchError, match=r"family.json entry 0: unknown key\(s\) \['pixelsize'\] for EncoderSpec"):
        load_registry(folder)


def test_unknown_preprocessing_op_and_missing_seed_fail(tmp_path):
    def bad_op(entries):
        entries[0]["preprocess"]["steps"][0]["op"] = "sharpen"

    with pytest.raises(BenchError, match="unknown preprocessing op 'sharpen'"):
        load_registry(_write_specs(tmp_path, bad_op))

    def no_seed(entries):
        next(e for e in entries if e["variant"] == "tiny").pop("init_seed")

    with pytest.raises(BenchError, match="tiny encoder needs an `init_seed`"):
        load_registry(_write_specs(tmp_path, no_seed))


def test_duplicate_names_fail(tmp_path):
    with pytest.raises(BenchError, match="registered twice"):
        load_registry(_write_specs(tmp_path, lambda entries: entries.append(dict(entries[0]))))


def test_unknown_encoder_lists_the_known_ones():
    with pytest.raises(BenchError) as error:
        get_spec("clip-vit-b17")
    assert "unknown encoder 'clip-vit-b17'" in str(error.value)
    assert "clip-vit-b16" in str(error.value) and "tiny-clip" in str(error.value)


def _layer_pattern(keys):
    """State-dict keys with layer indices replaced by N: the layout independent of depth."""
    return {re.sub(r"\.(resblocks|blocks|layer|layer\d)\.\d+\.", r".\1.N.", key) for key in keys}


@pytest.mark.parametrize(
    ("tiny", "official"),
    [("tiny-clip", "clip-vit-b16"), ("tiny-chexzero", "chexzero"), ("tiny-clip-rn", "clip-rn50x4")],
)
def test_tiny_openclip_variants_have_the_official_key_layout(tiny, official):
    """The real-size architecture is built on the meta device (no memory, no weights) to read its keys."""
    with torch.device("meta"):
        real = openclip.build_open_clip_model(openclip.model_config(get_spec(official)), seed=0)
    small = openclip.build_open_clip_model(openclip.model_config(get_spec(tiny)), seed=0)
    assert _layer_pattern(real.state_dict()) == _layer_pattern(small.state_dict())
    assert "text_projection" in real.state_dict() and "logit_scale" in real.state_dict()


def test_tiny_biomedclip_has_the_official_key_layout():
    official, tiny = get_spec("biomedclip"), get_spec("tiny-biomedclip")
    with torch.device("meta"):
        real = openclip.build_open_clip_model(
            biomedclip.model_config(official, biomedclip.text_config_dir(official, None)), seed=0
        )
    small = openclip.build_open_clip_model(biomedclip.model_config(tiny, biomedclip.text_config_dir(tiny, None)), seed=0)
    keys = real.state_dict()
    assert _layer_pattern(keys) == _layer_pattern(small.state_dict())
    assert {"visual.head.proj.weight", "text.proj.0.weight", "text.proj.2.weight"} <= set(keys)
    assert tuple(keys["visual.head.proj.weight"].shape) == (512, 768)
    assert tuple(keys["text.transformer.embeddings.word_embeddings.weight"].shape) == (30522, 768)


# Shapes of OpenAI's published CLIP checkpoints (the layout CheXzero's fine-tuned state_dict keeps too).
OPENAI_SHAPES = {
    "clip-vit-b16": {
        "visual.conv1.weight": (768, 3, 16, 16),
        "visual.positional_embedding": (197, 768),
        "visual.proj": (768, 512),
        "visual.transformer.resblocks.11.attn.in_proj_weight": (2304, 768),
        "visual.transformer.resblocks.11.mlp.c_fc.weight": (3072, 768),
        "positional_embedding": (77, 512),
        "token_embedding.weight": (49408, 512),
        "text_projection": (512, 512),
    },
    "chexzero": {"visual.conv1.weight": (768, 3, 32, 32), "visual.positional_embedding": (50, 768)},
    "clip-rn50": {"visual.attnpool.positional_embedding": (50, 2048), "visual.attnpool.c_proj.weight": (1024, 2048)},
}


@pytest.mark.parametrize("name", sorted(OPENAI_SHAPES))
def test_official_openclip_architectures_have_openais_published_shapes(name):
    with torch.device("meta"):
        real = openclip.build_open_clip_model(openclip.model_config(get_spec(name)), seed=0)
    state = real.state_dict()
    for key, shape in OPENAI_SHAPES[name].items():
        assert tuple(state[key].shape) == shape, key
    assert "logit_scale" in state and not any(key.endswith("attn_mask") for key in state)
