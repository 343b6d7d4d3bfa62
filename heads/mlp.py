"""The seed study's MLP head: embedding -> 1024 -> BatchNorm -> ReLU -> classes (Sun et al., ISBI 2025).

Trained with AdamW and early stopping on val loss (see `heads.trained`). The study used lr 1e-4, batch 64
and 100 epochs; our defaults (lr 1e-3, batch 256, up to 50 epochs, patience 3, standardised inputs) reach
the same kind of optimum far faster on a CPU. Pass the study's values for a faithful reproduction.
"""

from __future__ import annotations

import torch

from heads.trained import TrainedHead


class MLPHead(TrainedHead):
    """emb -> hidden -> BatchNorm -> ReLU -> classes; softmax or per-class sigmoids."""

    def build(self, dim: int, n_classes: int) -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(dim, self.hidden),
            torch.nn.BatchNorm1d(self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, n_classes),
        )
