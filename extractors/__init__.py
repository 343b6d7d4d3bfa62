"""Encoders: a registry kept as data (`extractors/specs/*.json`) and one thin adapter per family.

    from extractors import load_encoder
    encoder = load_encoder("tiny-clip")                 # random-init, no files needed
    encoder = load_encoder("clip-vit-b16", weights="open_clip_model.safetensors", device="cuda")
    images = encoder.preprocess(uint8_pixels)           # [B, S, S] -> [B, 3, H, W]
    encoder.encode_image(images)["embedding"]           # [B, D]

Family adapters live in `extractors/families/<family>.py` and expose
`build(spec, checkpoint: Checkpoint | None, device) -> Encoder`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extractors.base import Encoder


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read from disk for an adapter: what `read_checkpoint` returned plus its identity."""

    path: Path
    tag: str
    digest: str
    content: Any


def load_checkpoint(spec, weights: str | os.PathLike | None = None, *, trust_checkpoint: bool = False) -> Checkpoint:
    """Find (see `extractors.weights`), verify and safely read the checkpoint for `spec`."""
    from extractors.weights import read_checkpoint, resolve_weights, verify_digest

    found = resolve_weights(spec, weights)
    digest = verify_digest(found)
    content = read_checkpoint(found.path, trust_checkpoint=trust_checkpoint)
    return Checkpoint(path=found.path, tag=found.tag, digest=digest, content=content)


def load_encoder(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    trust_checkpoint: bool = False,
    device: str = "cpu",
) -> "Encoder":
    """Build the registered encoder `name`, frozen and in eval mode, on `device`.

    Tiny variants are random-initialised (deterministically) unless `weights` is given (a file, or
    "random-init:SEED" for another seed); official variants need their checkpoint (a BenchError says which
    file and where its authors publish it).
    """
    from extractors.registry import get_spec
    from extractors.weights import random_init_member

    spec = get_spec(name)
    seeded = random_init_member(spec, weights)
    checkpoint = None
    if seeded is not None:
        spec = seeded[0]
    elif weights is not None or spec.variant != "tiny":
        checkpoint = load_checkpoint(spec, weights, trust_checkpoint=trust_checkpoint)
    adapter = importlib.import_module(f"extractors.families.{spec.family}")
    encoder = adapter.build(spec, checkpoint, device)
    if seeded is not None:
        encoder.weights_digest = seeded[1]  # the seed tells this random initialisation from the registered one
    return encoder.freeze()


def encoder_spec(name: str, weights=None):
    """The spec `load_encoder(name, weights=weights)` builds: the registered one, or for "random-init:SEED" the
    tiny variant with that seed (no model is built, no torch imported)."""
    from extractors.registry import get_spec
    from extractors.weights import random_init_member

    spec = get_spec(name)
    seeded = random_init_member(spec, weights)
    return spec if seeded is None else seeded[0]


__all__ = ["Checkpoint", "encoder_spec", "load_checkpoint", "load_encoder"]
