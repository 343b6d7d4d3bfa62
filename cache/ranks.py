"""Who computes which shards: one process, or the ranks of a `torchrun` job.

The stores only need four things from a group of processes: this process's rank, the world size, a barrier
and a way to share a small object from rank 0. `SingleProcess` is the trivial group; `TorchRanks` wraps a
`torch.distributed` (gloo) process group.
"""

from __future__ import annotations

from typing import Any


class SingleProcess:
    rank = 0
    world = 1

    def barrier(self) -> None:
        return None

    def share(self, value: Any) -> Any:
        """Return rank 0's `value` on every rank."""
        return value

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        return [value]


class TorchRanks:
    """Ranks of an initialised `torch.distributed` job; `group` should be a gloo group (CPU objects)."""

    def __init__(self, group=None):
        import torch.distributed as dist

        self._dist = dist
        self.group = group
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()

    def barrier(self) -> None:
        self._dist.barrier(group=self.group)

    def share(self, value: Any) -> Any:
        box = [value if self.rank == 0 else None]
        self._dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        gathered: list[Any] = [None] * self.world
        self._dist.all_gather_object(gathered, value, group=self.group)
        return gathered

