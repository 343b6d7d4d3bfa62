"""The identity of a cached thing: a sha256 over the canonical JSON of everything that determines its content.

Two extractions share a store only when their identities are equal: same encoder spec, weights digest,
preprocessing, manifest digest, extractor version (and prompt sets, whose text embeddings the store holds).
Canonical JSON: keys sorted, no whitespace, UTF-8, tuples as lists, paths as posix strings, NaN refused.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from pathlib import PurePath
from typing import Any

from benchmark.errors import BenchError

IDENTITY_FIELDS = ("encoder", "weights_digest", "preprocessing", "manifest_digest", "extractor_version", "prompts")


def _plain(value: Any) -> Any:
    """Turn dataclasses, enums, paths, tuples and sets into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(item) for item in value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise BenchError(f"cannot put a {type(value).__name__} ({value!r}) into a cache identity; use plain data")


def canonical_json(value: Any) -> str:
    """The one JSON text of `value` (sorted keys, compact separators); NaN and infinity are refused."""
    try:
        return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        raise BenchError(f"a cache identity cannot hold NaN or infinity: {error}") from None


def digest(value: Any) -> str:
    """sha256 hex of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def store_identity(
    *,
    encoder: Any,
    weights_digest: str,
    preprocessing: Any,
    manifest_digest: str,
    extractor_version: str,
    prompts: Any,
) -> dict[str, Any]:
    """The identity record of an embedding store (plain data, see `IDENTITY_FIELDS`)."""
    return {
        "encoder": _plain(encoder),
        "weights_digest": weights_digest,
        "preprocessing": _plain(preprocessing),
        "manifest_digest": manifest_digest,
        "extractor_version": extractor_version,
        "prompts": _plain(prompts),
    }
