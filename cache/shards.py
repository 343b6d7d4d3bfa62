"""Rows cut into fixed-size shards: the unit of work, of crash safety and of distribution across ranks.

Each finished shard is one small `.npz` written atomically into a `<store>.parts/` folder, so a run killed at
any moment loses at most the shards it was working on, and the next run computes only the missing ones. The
shard size is fixed by the store (never by the batch size), so a resumed or distributed run writes exactly
the same rows in the same groups as an uninterrupted single-process one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.atomic import atomic_output, remove_stale_temporaries


@dataclass(frozen=True)
class ShardPlan:
    n_rows: int
    shard_rows: int

    def __post_init__(self) -> None:
        if self.shard_rows < 1:
            raise ValueError(f"shard_rows must be >= 1, got {self.shard_rows}")

    @property
    def n_shards(self) -> int:
        return -(-self.n_rows // self.shard_rows)

    def bounds(self, shard: int) -> tuple[int, int]:
        start = shard * self.shard_rows
        return start, min(start + self.shard_rows, self.n_rows)

    def assigned(self, rank: int = 0, world: int = 1) -> list[int]:
        """Shards a rank computes: every `world`-th shard starting at `rank`."""
        return list(range(rank, self.n_shards, world))


class PartsFolder:
    """The `<store>.parts/` folder holding finished shards of a store not yet assembled."""

    def __init__(self, path: Path, identity_json: str):
        self.path = Path(path)
        self.identity_json = identity_json

    def prepare(self) -> None:
        """Create the folder; shards left by a run with another identity (never expected) are discarded."""
        marker = self.path / "identity.json"
        if marker.exists() and marker.read_text() != self.identity_json:
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)
        if not marker.exists():
            with atomic_output(marker) as temporary:
                temporary.write_text(self.identity_json)

    def shard_path(self, shard: int) -> Path:
        return self.path / f"shard-{shard:05d}.npz"

    def missing(self, shards: list[int]) -> list[int]:
        return [shard for shard in shards if not self.shard_path(shard).exists()]

    def metadata(self) -> dict:
        marker = self.path / "identity.json"
        return json.loads(marker.read_text()) if marker.exists() else {}

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.path)


def save_arrays(target: Path, **arrays: np.ndarray) -> None:
    """Write named arrays as one uncompressed `.npz` (a finished shard), atomically."""
    with atomic_output(target) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)


def load_arrays(source: Path) -> dict[str, np.ndarray]:
    """Read a `.npz` written by `save_arrays` (no pickles)."""
    with np.load(source, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
