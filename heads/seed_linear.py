"""The seed study's "linear probe": embedding -> 1024 -> classes with no nonlinearity (Sun et al., ISBI 2025).

Two stacked linear layers are still a linear classifier, but trained like the study trained it: AdamW
lr 1e-4, weight decay 1e-5, batch 64, raw (unstandardised) embeddings, the model kept at the best val
loss. The study ran 100 epochs; here `max_epochs` (default 100) with early stopping on val loss
(`patience`, default 10). Method name in prediction files: "seed-linear".
"""

from __future__ import annotations

import torch

from heads.trained import TrainedHead


class SeedLinearProbe(TrainedHead):
    """emb -> hidden -> classes, no nonlinearity, the seed study's optimiser settings by default."""

    def __init__(
        self,
        *,
        lr: float = 1e-4,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int = 10,
        standardize: bool = False,
        hidden: int = 1024,
        holdout: float = 0.1,
        random_state: int = 0,
        n_classes: int | None = None,
    ):
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            standardize=standardize,
            hidden=hidden,
            holdout=holdout,
            random_state=random_state,
            n_classes=n_classes,
        )

    def build(self, dim: int, n_classes: int) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(dim, self.hidden), torch.nn.Linear(self.hidden, n_classes))
