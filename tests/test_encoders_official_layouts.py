"""Each family's official checkpoint layout, as its authors' code writes it, loads strictly; a wrong one lists
the keys. Fixtures: tests/fixtures/official-layout/<tiny encoder>/ (`meta.json` names the encoder, the file and
what wrote it, e.g. transformers 4.x `save_pretrained` for RAD-DINO's renamed attention keys). A new family is
covered by adding a fixture folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark.core.errors import BenchError
from extractors import load_encoder
from extractors.weights import read_checkpoint, unwrap_state_dict

FOLDER = Path(__file__).parent / "fixtures" / "official-layout"
FIXTURES = sorted(path.parent.name for path in FOLDER.glob("*/meta.json"))


def fixture(name, tmp_path):
    """(meta, checkpoint path). A fixture whose file would be too large to commit (a 49408-token CLIP vocabulary)
    says `"generate"`: the tiny model's own state_dict (of its submodule `module`, if given), wrapped under `wrap`
    and with the legacy `buffers` the authors' transformers version also saved, is written to a temporary file."""
    meta = json.loads((FOLDER / name / "meta.json").read_text())
    if not meta.get("generate"):
        return meta, FOLDER / name / meta["weights"]
    module = load_encoder(meta["encoder"]).model
    for part in meta.get("module", "").split(".") if meta.get("module") else ():
        module = getattr(module, part)  # a file that holds one part of the model (BioViL's image model)
    state = {key: value.clone() for key, value in module.state_dict().items()}
    for key, length in meta.get("buffers", {}).items():
        state[key] = torch.arange(length).unsqueeze(0)
    content = {meta["wrap"]: state} if meta.get("wrap") else state
    path = tmp_path / meta["weights"]
    torch.save(content, path)
    return meta, path


@pytest.mark.parametrize("name", FIXTURES)
def test_official_layout_loads_strictly_and_embeds(name, tmp_path):
    meta, path = fixture(name, tmp_path)
    encoder = load_encoder(meta["encoder"], weights=path)
    assert encoder.weights_tag.startswith(("local:", meta.get("tag", "local:")))
    size = encoder.pixel_size
    pixels = torch.randint(0, 256, (2, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        embedding = encoder.encode_image(encoder.preprocess(pixels))["embedding"]
    assert embedding.shape == (2, encoder.embed_dim) and torch.isfinite(embedding).all()
    if not meta.get("generate"):  # a committed file holds other weights than the seeded init
        random_init = load_encoder(meta["encoder"])
        with torch.inference_mode():
            assert not torch.allclose(embedding, random_init.encode_image(random_init.preprocess(pixels))["embedding"])


@pytest.mark.parametrize("name", FIXTURES)
def test_a_wrong_checkpoint_lists_the_missing_and_unexpected_keys(name, tmp_path):
    meta, path = fixture(name, tmp_path)
    content = read_checkpoint(path)
    state = dict(unwrap_state_dict(content, path=path, keys=(meta.get("wrap") or "state_dict",)))
    dropped = sorted(state)[-1]
    del state[dropped]
    state["not.a.layer.weight"] = torch.zeros(1)
    wrong = tmp_path / "wrong.pt"
    torch.save(state, wrong)
    with pytest.raises(BenchError) as error:
        load_encoder(meta["encoder"], weights=wrong)
    message = str(error.value)
    assert "unexpected keys (1): not.a.layer.weight" in message and "missing keys (1)" in message
