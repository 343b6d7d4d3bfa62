"""Finding, verifying and safely loading checkpoints in the official layouts of the CLIP-family encoders."""

from __future__ import annotations

import dataclasses
import datetime
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from benchmark.core.errors import BenchError
from extractors import load_checkpoint, load_encoder
from extractors.families import openclip
from extractors.registry import WeightsSource, get_spec
from extractors.weights import find_weights, read_checkpoint, sha256_of, strict_load


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


def embed(encoder, seed=0):
    generator = torch.Generator().manual_seed(seed)
    size = encoder.pixel_size
    batch = torch.randint(0, 256, (2, size, size), dtype=torch.uint8, generator=generator)
    with torch.inference_mode():
        return encoder.encode_image(encoder.preprocess(batch))["embedding"]


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-clip-rn", "tiny-chexzero", "tiny-biomedclip"])
def test_official_layout_state_dict_loads_strictly(name, tmp_path):
    """The tiny model saved as the authors save theirs (plain state_dict; OpenAI metadata entries) reloads."""
    source = load_encoder(name)
    state = {key: value.clone() for key, value in source.model.state_dict().items()}
    if name != "tiny-biomedclip":  # OpenAI's and CheXzero's checkpoints carry these non-parameter entries
        state.update(input_resolution=torch.tensor(64), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    path = tmp_path / "official.pt"
    torch.save(state, path)
    loaded = load_encoder(name, weights=path)
    assert loaded.weights_digest == sha256_of(path) and loaded.weights_tag == "local:official.pt"
    assert torch.equal(embed(loaded), embed(source))


def test_safetensors_and_dataparallel_prefix_load(tmp_path):
    source = load_encoder("tiny-clip")
    state = {key: value.contiguous() for key, value in source.model.state_dict().items()}
    save_file(state, str(tmp_path / "open_clip_model.safetensors"))
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pt")
    for path in (tmp_path / "open_clip_model.safetensors", tmp_path / "ddp.pt"):
        assert torch.equal(embed(load_encoder("tiny-clip", weights=path)), embed(source))


def test_wrong_checkpoint_fails_listing_the_keys(tmp_path):
    state = dict(load_encoder("tiny-clip").model.state_dict())
    del state["text_projection"]
    state["visual.extra_head.weight"] = torch.zeros(2)
    state["visual.proj"] = torch.zeros(3, 3)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(BenchError) as error:
        load_encoder("tiny-clip", weights=path)
    message = str(error.value)
    assert "missing keys (1): text_projection" in message
    assert "unexpected keys (1): visual.extra_head.weight" in message
    assert "visual.proj (checkpoint (3, 3), model (32, 32))" in message
    assert str(path) in message


def test_strict_load_lists_at_most_a_dozen_keys_and_counts_the_rest():
    module = torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(20)])
    with pytest.raises(BenchError, match=r"missing keys \(40\): .*\(\+28 more\)"):
        strict_load(module, {}, source="empty.pt")


def test_unsafe_pickle_is_refused_unless_trusted(tmp_path):
    state = dict(load_encoder("tiny-clip").model.state_dict())
    path = tmp_path / "lightning-like.ckpt"
    # A pickled global from outside configuration libraries (Lightning configs get inert placeholders).
    torch.save({"state_dict": state, "created": datetime.date(2021, 5, 1)}, path)
    with pytest.raises(BenchError, match="datetime.date is not allowed.*can run code.*--trust-checkpoint"):
        load_encoder("tiny-clip", weights=path)
    trusted = load_encoder("tiny-clip", weights=path, trust_checkpoint=True)
    assert torch.equal(embed(trusted), embed(load_encoder("tiny-clip")))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_archive_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(path))
    with pytest.raises(BenchError, match="TorchScript archive.*Refused"):
        read_checkpoint(path)
    state = read_checkpoint(path, trust_checkpoint=True)
    assert set(state) == {"weight", "bias"}


def test_a_plain_zip_archive_is_not_mistaken_for_a_checkpoint(tmp_path):
    path = tmp_path / "release.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pytorch_model.bin", b"not really")
    with pytest.raises(BenchError, match="zip archive, not a checkpoint; extract it"):
        read_checkpoint(path)


def test_missing_official_weights_name_the_file_and_publisher(no_weights_anywhere):
    with pytest.raises(BenchError) as error:
        load_encoder("clip-vit-b16")
    message = str(error.value)
    assert "open_clip_model.safetensors" in message
    assert "timm/vit_base_patch16_clip_224.openai" in message
    assert f"$BENCH_WEIGHTS={no_weights_anywhere}" in message
    with pytest.raises(BenchError, match="best_64_5e-05_original_22000_0.864.pt.*rajpurkarlab/CheXzero"):
        load_encoder("chexzero")


def _spec_with_source(tmp_path, **source):
    spec = get_spec("tiny-clip")
    weights = (WeightsSource(tag="test-release", filename="tiny.pt", published_at="this test", **source),)
    return dataclasses.replace(spec, weights=weights)


def test_weights_found_in_the_weights_folder_and_digest_verified(tmp_path, no_weights_anywhere):
    state = load_encoder("tiny-clip").model.state_dict()
    torch.save(state, no_weights_anywhere / "tiny.pt")
    digest = sha256_of(no_weights_anywhere / "tiny.pt")
    spec = _spec_with_source(tmp_path, sha256=digest)
    checkpoint = load_checkpoint(spec)
    assert checkpoint.path == no_weights_anywhere / "tiny.pt" and checkpoint.tag == "test-release"
    assert checkpoint.digest == digest
    assert openclip.build(spec, checkpoint, "cpu").weights_tag == "test-release"

    corrupt = _spec_with_source(tmp_path, sha256="0" * 64)
    with pytest.raises(BenchError, match="does not match the published 0000"):
        load_checkpoint(corrupt)


def test_weights_found_in_an_offline_hugging_face_cache(tmp_path, no_weights_anywhere):
    snapshot = tmp_path / "hf-cache" / "models--someone--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "hf-cache" / "models--someone--tiny" / "refs").mkdir()
    (tmp_path / "hf-cache" / "models--someone--tiny" / "refs" / "main").write_text("abc123")
    torch.save(load_encoder("tiny-clip").model.state_dict(), snapshot / "tiny.pt")
    spec = _spec_with_source(tmp_path, hf_repo="someone/tiny")
    found = find_weights(spec)
    assert found is not None and found.path == snapshot / "tiny.pt"


def test_weights_folder_option_without_the_named_file_says_what_it_needs(tmp_path):
    spec = get_spec("clip-vit-b16")
    with pytest.raises(BenchError, match="folder holds none of .*open_clip_model.safetensors"):
        find_weights(spec, tmp_path)
    with pytest.raises(BenchError, match="no such file or folder"):
        find_weights(spec, tmp_path / "absent.pt")


def test_a_file_name_several_encoders_need_is_only_found_in_a_named_folder(no_weights_anywhere):
    """`open_clip_model.safetensors` at the top of the weights folder could be any CLIP: never guessed."""
    (no_weights_anywhere / "open_clip_model.safetensors").write_bytes(b"")
    assert find_weights(get_spec("clip-vit-b16")) is None
    repo_folder = no_weights_anywhere / "vit_base_patch32_clip_224.openai"
    repo_folder.mkdir()
    (repo_folder / "open_clip_model.safetensors").write_bytes(b"")
    assert find_weights(get_spec("clip-vit-b16")) is None
    assert find_weights(get_spec("clip-vit-b32")).path == repo_folder / "open_clip_model.safetensors"
    (no_weights_anywhere / "best_64_5e-05_original_22000_0.864.pt").write_bytes(b"")
    assert find_weights(get_spec("chexzero")).path.parent == no_weights_anywhere


def test_biomedclip_ignores_a_non_bert_config_beside_its_weights(tmp_path):
    """BiomedCLIP's Hugging Face repository now also holds a remote-code `config.json` for the whole model."""
    from extractors.families import biomedclip

    source = load_encoder("tiny-biomedclip")
    folder = tmp_path / "snapshot"
    folder.mkdir()
    torch.save(source.model.state_dict(), folder / "weights.pt")
    (folder / "config.json").write_text('{"model_type": "biomed_clip", "architectures": ["BiomedCLIPModel"]}')
    for name in biomedclip.TOKENIZER_FILES:
        (folder / name).write_bytes((biomedclip.ASSETS / "tiny-biomedbert" / name).read_bytes())
    loaded = load_encoder("tiny-biomedclip", weights=folder / "weights.pt")
    assert torch.equal(embed(loaded), embed(source))
    assert biomedclip.text_config_dir(loaded.spec, load_checkpoint(loaded.spec, folder / "weights.pt")) == (
        biomedclip.ASSETS / "tiny-biomedbert"
    )
