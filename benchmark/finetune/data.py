"""What the training loop reads: rows of the pixel cache with their targets, and the order it reads them in.

Batches are planned, not sampled on the fly: the order of epoch `e` is a permutation drawn from a generator
seeded by (seed, e), so a resumed run reads exactly what an uninterrupted one would, and a distributed run
reads the same global batches as one process (each process takes its slice of every micro-batch).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from benchmark.core.errors import BenchError


class PixelSource(Protocol):
    """Anything with `read(indices) -> uint8 [B, S, S]`, e.g. `cache.pixels.PixelStore`."""

    def read(self, indices: np.ndarray) -> np.ndarray: ...


class ArrayPixels:
    """Pixels already in memory (tests, benchmarks): a uint8 array [N, S, S]."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array, dtype=np.uint8)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.array[np.asarray(indices)]

    def __len__(self) -> int:
        return len(self.array)


@dataclass(frozen=True)
class SplitData:
    """One split: `rows` index the pixel source; `targets` are class indices (single) or 0/1 [n, C] (multi);
    `groups`: the protected attribute's group code of each row (group-aware fine-tuning), or None."""

    pixels: PixelSource
    rows: np.ndarray
    targets: np.ndarray
    kind: str
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("single", "multi"):
            raise ValueError(f"task kind must be 'single' or 'multi', got {self.kind!r}")
        if len(self.rows) != len(self.targets):
            raise ValueError(f"{len(self.rows)} rows but {len(self.targets)} targets")
        if self.groups is not None and len(self.groups) != len(self.rows):
            raise ValueError(f"{len(self.rows)} rows but {len(self.groups)} group codes")

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels and targets of the given positions within this split (pixel reads in ascending row order)."""
        rows = self.rows[positions]
        order = np.argsort(rows, kind="stable")
        pixels = np.empty(0)
        if len(rows):
            pixels = np.asarray(self.pixels.read(rows[order]))
            pixels = pixels[np.argsort(order, kind="stable")]
        return pixels, self.targets[positions]

    def group_tensor(self, positions: np.ndarray, device) -> torch.Tensor:
        return torch.as_tensor(self.groups[positions], dtype=torch.int64).to(device)

    def target_tensor(self, positions: np.ndarray, device) -> torch.Tensor:
        targets = torch.as_tensor(self.targets[positions])
        targets = targets.long() if self.kind == "single" else targets.float()
        return targets.to(device)


def derived_seed(seed: int, *parts) -> int:
    """A 63-bit seed derived from the run seed and a purpose, e.g. derived_seed(7, "order", epoch)."""
    digest = hashlib.sha256("/".join(str(part) for part in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, *parts) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(seed, *parts))


@dataclass(frozen=True)
class BatchPlan:
    """How each epoch is cut: global batches of `batch_size`, each in `grad_accum` micro-batches, each split
    across `world_size` processes. The last incomplete global batch of an epoch is left out (a new order
    every epoch, so no image is always left out)."""

    batch_size: int
    grad_accum: int
    world_size: int = 1

    def __post_init__(self) -> None:
        micro = self.batch_size // self.grad_accum
        if self.batch_size % self.grad_accum or micro % self.world_size:
            raise BenchError(
                f"batch size {self.batch_size} cannot be split into {self.grad_accum} micro-batches over "
                f"{self.world_size} processes; choose a batch size divisible by grad-accum x processes "
                f"({self.grad_accum * self.world_size})"
            )

    def steps_per_epoch(self, count: int) -> int:
        return count // self.batch_size

    def epoch_order(self, count: int, seed: int, epoch: int) -> np.ndarray:
        return torch.randperm(count, generator=generator(seed, "order", epoch)).numpy()

    def global_batch(self, order: np.ndarray, step: int) -> np.ndarray:
        return order[step * self.batch_size : (step + 1) * self.batch_size]

    def local_slice(self, micro: int, rank: int) -> slice:
        """Positions within a global batch that process `rank` reads for micro-batch `micro`."""
        micro_size = self.batch_size // self.grad_accum
        per_rank = micro_size // self.world_size
        start = micro * micro_size + rank * per_rank
        return slice(start, start + per_rank)
