"""Group-aware fine-tuning: a group-balanced epoch order and GroupDRO's online group weights.

    order = balanced_order(train.groups, seed, epoch)       # n draws with replacement, every group equally likely
    dro = GroupDRO(n_groups, step_size, device)              # q: one weight per group, uniform at first
    dro.start_batch(groups of the global batch) -> per micro-batch dro.micro_loss(losses, groups, world_size)
        -> dro.accumulate(losses, groups) -> after the optimizer step dro.end_batch(ranks)

Arithmetic of one global batch, whatever the micro-batches and processes: the loss is sum_g q_g * mean_g(loss),
with each group's mean over the whole global batch (its counts are known before the batch is read: every rank
plans the same batches); after the step, the groups' mean losses of the batch (summed over micro-batches and, under
torchrun, all-reduced over ranks) update q_g <- q_g exp(step * mean_g), renormalised (Sagawa et al., ICLR 2020).
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.core.distributed import Ranks
from benchmark.finetune.data import generator


def balanced_weights(groups: np.ndarray) -> np.ndarray:
    """n / (G n_g) per row of group g (G: the groups present), so every group weighs the same."""
    counts = np.bincount(groups)
    return len(groups) / (np.count_nonzero(counts) * counts[groups].astype(np.float64))


def balanced_order(groups: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The rows epoch `epoch` visits: len(groups) draws with replacement, each group equally likely, from a
    generator seeded by (seed, "order", epoch) (so a resumed or distributed run reads the same batches)."""
    weights = torch.from_numpy(balanced_weights(groups))
    return torch.multinomial(weights, len(groups), replacement=True, generator=generator(seed, "order", epoch)).numpy()


class GroupDRO:
    """GroupDRO's online group weights over one training run (see the module docstring)."""

    def __init__(self, n_groups: int, step_size: float, device, weights: torch.Tensor | None = None):
        self.step_size = float(step_size)
        self.q = (torch.full((n_groups,), 1.0 / n_groups) if weights is None else weights.clone()).to(device)
        self.counts = torch.ones(n_groups, device=device)
        self.sums = torch.zeros(n_groups, device=device)

    def start_batch(self, batch_groups: np.ndarray) -> None:
        counts = np.bincount(batch_groups, minlength=self.q.numel())
        self.counts = torch.from_numpy(counts.astype(np.float32)).to(self.q.device)
        self.sums = torch.zeros_like(self.q)

    def micro_loss(self, losses: torch.Tensor, groups: torch.Tensor, world_size: int) -> torch.Tensor:
        """This micro-batch's share of sum_g q_g mean_g(loss) (times the world size: DDP averages gradients)."""
        return (self.q[groups] * losses / self.counts[groups]).sum() * world_size

    def accumulate(self, losses: torch.Tensor, groups: torch.Tensor) -> None:
        self.sums.index_add_(0, groups, losses.detach().to(self.sums.dtype))

    def end_batch(self, ranks: Ranks) -> None:
        if ranks.distributed:
            torch.distributed.all_reduce(self.sums)
        means = self.sums / self.counts.clamp_min(1.0)
        self.q = self.q * torch.exp(self.step_size * means)
        self.q = self.q / self.q.sum()


def worst_group_loss(losses: np.ndarray, groups: np.ndarray) -> float:
    """The highest mean loss over the groups present."""
    return float(max(losses[groups == g].mean() for g in np.unique(groups)))
