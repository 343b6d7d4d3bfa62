"""Helpers for the fidelity tests: read a reference fixture and build the encoder it was computed for.

A fixture folder `tests/fixtures/reference/<name>/` holds `meta.json`, `reference.npz` (the authors' pixels
and embeddings for `tests.reference_images`) and, where the authors' file format matters, the random-weight
checkpoint file their code wrote. `meta.json` names:
  encoder            the registry entry whose preprocessing, loader and text handling are tested;
  architecture_from  the tiny entry whose (small) architecture the random weights have, `extra` overrides;
  weights            the checkpoint file in the folder, or null for the tiny entry's seeded random weights
                     (then `state_sha256` pins them: if torch ever initialises differently, regenerate);
  store_size, prompts, outputs / text_outputs (encoder output key -> array in reference.npz).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "reference"


def fixture_names() -> list[str]:
    return sorted(path.parent.name for path in FIXTURES.glob("*/meta.json"))


def read_fixture(name: str) -> tuple[dict, dict[str, np.ndarray], Path]:
    folder = FIXTURES / name
    meta = json.loads((folder / "meta.json").read_text())
    with np.load(folder / "reference.npz") as arrays:
        return meta, {key: arrays[key] for key in arrays.files}, folder


def fixture_spec(meta: dict):
    """The official spec with the tiny entry's architecture (sizes) and `meta["extra"]` on top."""
    from extractors.registry import get_spec

    official, tiny = get_spec(meta["encoder"]), get_spec(meta["architecture_from"])
    extra = {**official.extra, **tiny.extra, **meta.get("extra", {})}
    return dataclasses.replace(
        official, extra=extra, image_embed_dim=tiny.image_embed_dim, text_embed_dim=tiny.text_embed_dim,
        **meta.get("spec", {}),
    )


def state_sha256(module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def build_fixture_encoder(meta: dict, folder: Path):
    """The encoder of a fixture, loaded through the same path `bench extract --weights` takes."""
    from extractors import load_checkpoint

    spec = fixture_spec(meta)
    checkpoint = None
    if meta.get("weights"):
        checkpoint = load_checkpoint(spec, folder / meta["weights"])
    else:
        spec = dataclasses.replace(spec, init_seed=meta.get("init_seed", spec.init_seed or 0))
    adapter = importlib.import_module(f"extractors.families.{spec.family}")
    return adapter.build(spec, checkpoint, "cpu").freeze()
