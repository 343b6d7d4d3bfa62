"""Prompt-text embeddings cached beside the stores: one small HDF5 file per (encoder, weights, prompts).

    path = Workdir.of(workdir).text_set_path(model, digest(identity))
    fields = read_text_set(path, digest(identity))            # None when absent or not this identity
    write_text_set(path, fields, identity)                    # atomically (temporary file renamed)

Why a file of its own rather than one more `text/<promptset>` group in the embedding store: a store's identity
includes its prompt sets, so adding a set to a store would change its identity (a new store, every image
embedded again) or make a store file mutable that readers may have open; prompt-text embeddings cost seconds
and need only the text tower; and they do not depend on the dataset, so one file serves every store of the
encoder with those weights. The identity (`text_set_identity`) holds what determines the numbers: the encoder's
spec, its weights digest, the extractor version, how the family encodes a prompt set and the prompts themselves
(class, text, polarity), so an edited prompt file never reuses old embeddings. Layout: `text/embedding` [P, D]
float32, `text/prompts`, `text/class_name`, `text/polarity` (and GLoRIA's `text/words`, `text/word_mask`) as in a
store's prompt set; attrs `kind`, `identity` (canonical JSON), `identity_digest`, `model`, `created`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py

from benchmark.core.atomic import atomic_output
from benchmark.core.identity import canonical_json, digest, plain
from cache.embeddings import read_text_group, write_text_group

TEXT_SET_KIND = "cxr-fairbench prompt-text embeddings"


def text_set_identity(*, encoder: Any, weights_digest: str, extractor_version: str, encoding: str, prompts) -> dict:
    return {"encoder": plain(encoder), "weights_digest": weights_digest, "extractor_version": extractor_version,
            "encoding": encoding, "prompts": plain(prompts)}


def read_text_set(path: Path, identity_digest: str) -> dict | None:
    """The cached fields, or None when the file is absent, unreadable or of another identity."""
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("kind") != TEXT_SET_KIND or handle.attrs.get("identity_digest") != identity_digest:
                return None
            return read_text_group(handle["text"])
    except (OSError, KeyError):
        return None


def write_text_set(path: Path, fields: dict, identity: dict, *, model: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temporary:
        with h5py.File(temporary, "w") as handle:
            write_text_group(handle.create_group("text"), fields)
            handle.attrs.update({"kind": TEXT_SET_KIND, "identity": canonical_json(identity),
                                 "identity_digest": digest(identity), "model": model,
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return path
