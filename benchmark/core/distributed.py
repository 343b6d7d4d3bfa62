"""One process or the ranks of a `torchrun` job: who computes what, sharing small objects, and devices.

Everything that runs under `torchrun --nproc-per-node N` (extraction, fine-tuning) goes through `Ranks` and
`process_group`; outside torchrun (no WORLD_SIZE, or 1) `Ranks()` is the trivial group of one. The backend
is NCCL on CUDA and gloo on the CPU; objects (`share`, `gather`) always travel over a gloo group.
torch is imported only when a process group or a CUDA device is asked for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from benchmark.core.errors import BenchError

TIMEOUT = timedelta(hours=4)
"""How long a rank waits for its peers (extraction of a large dataset on one slow rank can take hours)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a group of processes (`group`: the gloo group for objects; None = default)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: Any = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier(group=self.group)

    def share(self, value: Any) -> Any:
        """Return rank 0's `value` on every rank."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value, group=self.group)
        return gathered

    def gather_rows(self, local, positions, total: int):
        """Put every rank's rows (`local[i]` belongs at `positions[i]`) into one [total, ...] numpy array."""
        import numpy as np

        merged = np.empty((total, *local.shape[1:]), dtype=local.dtype)
        for piece_positions, piece in self.gather((positions, local)):
            merged[piece_positions] = piece
        return merged


SINGLE = Ranks()


def under_torchrun() -> bool:
    """True when this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def environment_rank() -> int:
    """This process's rank from torchrun's environment (0 outside torchrun), before any process group exists."""
    return int(os.environ.get("RANK", "0")) if under_torchrun() else 0


def check_device(device: str) -> str:
    """'cpu', 'cuda' or 'cuda:N'; BenchError when CUDA is asked for but absent, or the name is unknown."""
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise BenchError(
                f"--device {device} was asked for, but this machine has no usable CUDA GPU "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). Use --device cpu."
            )
        return device
    raise BenchError(f"unknown device {device!r}; use 'cpu' or 'cuda' (or 'cuda:N').")


BACKEND_ENV = "BENCH_DIST_BACKEND"
"""Overrides the backend (e.g. gloo for two processes on one GPU, which NCCL refuses)."""


def backend_for(device: str) -> str:
    """NCCL on CUDA, gloo on the CPU, unless BENCH_DIST_BACKEND names one."""
    return os.environ.get(BACKEND_ENV) or ("nccl" if device.startswith("cuda") else "gloo")


@contextlib.contextmanager
def process_group(device: str) -> Iterator[tuple[Ranks, str]]:
    """Yield (ranks, device). Under torchrun: join (or create) the process group — NCCL on CUDA with a gloo
    group for objects, gloo on the CPU — each rank on the GPU of its local rank; at the end every rank meets
    at a barrier before a group this call created is torn down. Elsewhere: `(SINGLE, device)`."""
    device = check_device(device)
    if not under_torchrun():
        yield SINGLE, device
        return
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        gpu = local_rank % torch.cuda.device_count()  # more processes than GPUs share them (a check on one GPU)
        device = f"cuda:{gpu}"
        torch.cuda.set_device(gpu)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend=backend_for(device), timeout=TIMEOUT)
    group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo", timeout=TIMEOUT)
    ranks = Ranks(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, group=group)
    try:
        yield ranks, device
        dist.barrier(group=group)  # no rank tears the group down while a peer still talks to it
    finally:
        if owned:
            dist.destroy_process_group()
