"""Store identities: canonical JSON, and a digest that changes with every field that determines a store."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from benchmark.core.errors import BenchError
from benchmark.core.identity import canonical_json, digest
from cache.embeddings import IDENTITY_FIELDS, store_identity


@dataclass(frozen=True)
class Spec:
    name: str
    sizes: tuple[int, ...]


BASE = dict(
    encoder=Spec("tiny", (1, 2)),
    weights_digest="random-init",
    preprocessing={"size": 32, "mean": (0.5,)},
    manifest_digest="ab" * 32,
    extractor_version="1",
    prompts={"default": [("Effusion", "effusion", "pos")]},
)

CHANGED = dict(
    encoder=Spec("tiny", (1, 3)),
    weights_digest="0" * 64,
    preprocessing={"size": 32, "mean": (0.4,)},
    manifest_digest="cd" * 32,
    extractor_version="2",
    prompts={"default": [("Effusion", "pleural effusion", "pos")]},
)


def test_canonical_json_ignores_key_order_and_container_kind():
    assert canonical_json({"b": (1, 2), "a": {"y": 1, "x": 2}}) == canonical_json({"a": {"x": 2, "y": 1}, "b": [1, 2]})
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_canonical_json_refuses_nan_and_unknown_objects():
    with pytest.raises(BenchError, match="NaN"):
        canonical_json({"mean": math.nan})
    with pytest.raises(BenchError, match="object"):
        canonical_json({"x": object()})


def test_same_identity_same_digest():
    assert digest(store_identity(**BASE)) == digest(store_identity(**dict(BASE)))


@pytest.mark.parametrize("field", IDENTITY_FIELDS)
def test_every_field_changes_the_digest(field):
    changed = dict(BASE, **{field: CHANGED[field]})
    assert digest(store_identity(**changed)) != digest(store_identity(**BASE))
