"""Mini-batch heads trained with AdamW and early stopping on val loss (the seed study's probe and MLP).

Deterministic for a given `random_state`: weights are initialised and batches shuffled from one
`torch.Generator`; no global seed is touched.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator

from heads.common import (
    CHUNK_ROWS,
    HeadRecord,
    checked_features,
    hold_out,
    loss_on_logits,
    n_outputs,
    probabilities_from_logits,
    standardisation,
    target_tensor,
    task_kind_of,
    to_float32,
)


class TrainedHead(HeadRecord, BaseEstimator):
    """Base class: subclasses define `build(dim, n_classes) -> nn.Module`.

    Learned attributes: `module_` (the torch module, eval mode), `mean_`, `scale_` (input standardisation),
    `kind_`, `epochs_run_`, `best_epoch_` (1-based), `val_loss_` (per epoch), `train_loss_` (per epoch).
    """

    def __init__(
        self,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 256,
        max_epochs: int = 50,
        patience: int = 3,
        standardize: bool = True,
        hidden: int = 1024,
        holdout: float = 0.1,
        random_state: int = 0,
        n_classes: int | None = None,
    ):
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.standardize = standardize
        self.hidden = hidden
        self.holdout = holdout
        self.random_state = random_state
        self.n_classes = n_classes

    def build(self, dim: int, n_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    def fit(self, X, y, X_val=None, y_val=None):
        X = checked_features(self, X, fitting=True)
        y = np.asarray(y)
        self.kind_ = task_kind_of(y)
        if X_val is not None:
            X_val = checked_features(self, X_val, fitting=False)
        if X_val is None:
            X, y, X_val, y_val = hold_out(X, y, self.holdout, self.random_state)
        y_val = np.asarray(y_val)
        n_classes = self.n_classes
        if n_classes is None and y.ndim == 1:
            n_classes = int(max(y.max(), y_val.max())) + 1
        n_classes = n_outputs(y, n_classes)

        X_train = to_float32(X)
        if self.standardize:
            self.mean_, self.scale_ = standardisation(X_train)
        else:
            self.mean_, self.scale_ = torch.zeros(X_train.shape[1]), torch.ones(X_train.shape[1])
        X_train.sub_(self.mean_).div_(self.scale_)
        X_valid = (to_float32(X_val) - self.mean_) / self.scale_
        target, target_val = target_tensor(y), target_tensor(y_val)

        generator = torch.Generator().manual_seed(int(self.random_state))
        module = self.build(X_train.shape[1], n_classes)
        _initialise(module, generator)
        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)

        best_loss, best_state, since_best = float("inf"), None, 0
        self.val_loss_, self.train_loss_ = [], []
        n = X_train.shape[0]
        for epoch in range(1, self.max_epochs + 1):
            module.train()
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, self.batch_size):
                batch = order[start : start + self.batch_size]
                if len(batch) < 2:  # BatchNorm needs two rows; this row is in other epochs' batches
                    continue
                loss = loss_on_logits(module(X_train[batch]), target[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            self.train_loss_.append(total / n)
            val_loss = _evaluate_loss(module, X_valid, target_val)
            self.val_loss_.append(val_loss)
            if val_loss < best_loss:
                best_loss, best_state, since_best = val_loss, copy.deepcopy(module.state_dict()), 0
                self.best_epoch_ = epoch
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.epochs_run_ = epoch
        module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        return self

    def chosen_on_val(self) -> dict:
        return {"best_epoch": self.best_epoch_, "epochs_run": self.epochs_run_, "val_loss": self.val_loss_[self.best_epoch_ - 1]}

    def decision_function(self, X) -> np.ndarray:
        X = checked_features(self, X, fitting=False)
        outputs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], CHUNK_ROWS):
                chunk = (to_float32(X[start : start + CHUNK_ROWS]) - self.mean_) / self.scale_
                outputs.append(self.module_(chunk))
        return torch.cat(outputs).numpy()

    def predict_proba(self, X) -> np.ndarray:
        logits = torch.from_numpy(self.decision_function(X))
        return probabilities_from_logits(logits, self.kind_).numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        probabilities = self.predict_proba(X)
        return probabilities.argmax(axis=1) if self.kind_ == "single" else (probabilities >= 0.5).astype(np.int8)


def _initialise(module: torch.nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, drawn from `generator` instead of the global RNG."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)


def _evaluate_loss(module: torch.nn.Module, X: torch.Tensor, target: torch.Tensor) -> float:
    module.eval()
    with torch.no_grad():
        total = sum(
            float(loss_on_logits(module(X[s : s + CHUNK_ROWS]), target[s : s + CHUNK_ROWS], reduction="sum"))
            for s in range(0, X.shape[0], CHUNK_ROWS)
        )
    return total / X.shape[0]
