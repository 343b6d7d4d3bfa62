"""Canonical JSON and digests: the one way the project turns a description into an identity.

Used for embedding-store identities (a store is reused only when the digest of everything that determines
its content is equal), fine-tuning run ids and run comparisons. Canonical JSON: keys sorted, no
whitespace, UTF-8, tuples as lists, sets sorted, paths as posix strings, dataclasses and enums as their
values, numpy scalars as Python numbers; NaN and infinity are refused.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from pathlib import PurePath
from typing import Any

from benchmark.core.errors import BenchError


def plain(value: Any) -> Any:
    """Turn dataclasses, enums, paths, tuples, sets and numpy scalars into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(item) for item in value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise BenchError(f"cannot put a {type(value).__name__} ({value!r}) into an identity; use plain data")


def finite_or_none(value: Any) -> Any:
    """`plain(value)` with NaN and infinities replaced by None (for records that must be strict JSON)."""
    value = plain(value)
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def canonical_json(value: Any) -> str:
    """The one JSON text of `value` (sorted keys, compact separators); NaN and infinity are refused."""
    try:
        return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        raise BenchError(f"an identity cannot hold NaN or infinity: {error}") from None


def digest(value: Any) -> str:
    """sha256 hex of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
