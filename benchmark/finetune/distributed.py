"""Running under `torchrun`: the process group, gathering results, and which process speaks.

Outside torchrun (no WORLD_SIZE in the environment, or 1) everything here is a no-op for a single process.
The backend is NCCL on CUDA and gloo on the CPU (the tests use 2 CPU processes on gloo).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def gather_rows(self, local: np.ndarray, positions: np.ndarray, total: int) -> np.ndarray:
        """Put every process's rows (`local[i]` belongs at `positions[i]`) into one [total, ...] array."""
        if not self.distributed:
            merged = np.empty((total, *local.shape[1:]), dtype=local.dtype)
            merged[positions] = local
            return merged
        pieces: list = [None] * self.world_size
        dist.all_gather_object(pieces, (positions, local))
        merged = np.empty((total, *local.shape[1:]), dtype=local.dtype)
        for piece_positions, piece in pieces:
            merged[piece_positions] = piece
        return merged


def processes_from_environment(device: str) -> Processes:
    """Join the torchrun process group when launched by torchrun; otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Processes()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return Processes(rank=rank, world_size=world_size, local_rank=local_rank)


def process_device(device: str, processes: Processes) -> torch.device:
    """Each torchrun process on CUDA takes the GPU of its local rank."""
    if device.startswith("cuda") and processes.distributed:
        return torch.device("cuda", processes.local_rank)
    return torch.device(device)
