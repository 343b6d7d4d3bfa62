"""Mini-batch heads trained with AdamW and early stopping on val loss (the seed study's probe and MLP).

Deterministic for a given `random_state`: weights are initialised and batches shuffled from one
`torch.Generator`; no global seed is touched.

Three hooks let a subclass change how it learns without copying the loop (`heads.mitigation` uses them):
`epoch_order` (which training rows each epoch visits, in what order), `batch_loss` (the loss of one
mini-batch) and `val_criterion` (what picks the best epoch). Row weights (`row_weight`, `val_row_weight`)
and groups (`groups`, `groups_val`: one integer per row) travel with the data to the hooks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator

from heads.common import (
    CHUNK_ROWS,
    HeadRecord,
    checked_features,
    holdout_rows,
    loss_on_logits,
    n_outputs,
    probabilities_from_logits,
    row_weights,
    standardisation,
    target_tensor,
    task_kind_of,
    to_float32,
)


@dataclass
class TrainingData:
    """Standardised train and val tensors, with optional row weights and group codes (int64)."""

    X: torch.Tensor
    target: torch.Tensor
    X_val: torch.Tensor
    target_val: torch.Tensor
    weight: torch.Tensor | None = None
    weight_val: torch.Tensor | None = None
    groups: torch.Tensor | None = None
    groups_val: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return self.X.shape[0]


class TrainedHead(HeadRecord, BaseEstimator):
    """Base class: subclasses define `build(dim, n_classes) -> nn.Module`.

    Learned attributes: `module_` (the torch module, eval mode), `mean_`, `scale_` (input standardisation),
    `kind_`, `epochs_run_`, `best_epoch_` (1-based), `val_loss_` (per epoch: the val criterion),
    `train_loss_` (per epoch).
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

    def fit(self, X, y, X_val=None, y_val=None, *, row_weight=None, val_row_weight=None, groups=None,
            groups_val=None):
        """Fit on (X, y), keeping the epoch with the best val criterion on (X_val, y_val) (a random holdout of
        the training rows when no val set is given)."""
        data, n_classes = self._training_data(X, y, X_val, y_val, row_weight, val_row_weight, groups, groups_val)
        generator = torch.Generator().manual_seed(int(self.random_state))
        module = self.build(data.X.shape[1], n_classes)
        _initialise(module, generator)
        self.initialise(module, data)
        self._start(data)
        self._train(module, data, generator)
        return self

    def _training_data(self, X, y, X_val, y_val, row_weight, val_row_weight, groups, groups_val):
        X = checked_features(self, X, fitting=True)
        y = np.asarray(y)
        self.kind_ = task_kind_of(y)
        if X_val is not None:
            X_val = checked_features(self, X_val, fitting=False)
        else:
            train, val = holdout_rows(len(y), self.holdout, self.random_state)
            X, X_val, y, y_val = X[train], X[val], y[train], y[val]
            row_weight, val_row_weight = _rows(row_weight, train), _rows(row_weight, val)
            groups, groups_val = _rows(groups, train), _rows(groups, val)
        y_val = np.asarray(y_val)
        n_classes = self.n_classes
        if n_classes is None and y.ndim == 1:
            n_classes = int(max(y.max(), y_val.max())) + 1
        X_train = to_float32(X)
        if self.standardize:
            self.mean_, self.scale_ = standardisation(X_train)
        else:
            self.mean_, self.scale_ = torch.zeros(X_train.shape[1]), torch.ones(X_train.shape[1])
        X_train.sub_(self.mean_).div_(self.scale_)
        data = TrainingData(
            X=X_train, target=target_tensor(y), X_val=(to_float32(X_val) - self.mean_) / self.scale_,
            target_val=target_tensor(y_val), weight=row_weights(row_weight, len(y)),
            weight_val=row_weights(val_row_weight, len(y_val)), groups=_codes(groups, len(y)),
            groups_val=_codes(groups_val, len(y_val)),
        )
        return data, n_outputs(y, n_classes)

    def initialise(self, module: torch.nn.Module, data: TrainingData) -> None:
        """Called on the freshly built module (default: keep PyTorch's initialisation, drawn from the seed)."""

    def _start(self, data: TrainingData) -> None:
        """Called once before training (subclasses set up their state)."""

    def _train(self, module: torch.nn.Module, data: TrainingData, generator: torch.Generator) -> None:
        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        best_loss, best_state, since_best = float("inf"), None, 0
        self.val_loss_, self.train_loss_ = [], []
        for epoch in range(1, self.max_epochs + 1):
            self.train_loss_.append(self._train_epoch(module, optimizer, data, generator))
            module.eval()
            with torch.no_grad():
                val_loss = self.val_criterion(module, data)
            self.val_loss_.append(val_loss)
            if val_loss < best_loss:
                best_loss, best_state, since_best = val_loss, copy.deepcopy(module.state_dict()), 0
                self.best_epoch_ = epoch
            else:
                since_best += 1
                if since_best >= self.patience:
                    break
        self.epochs_run_ = epoch
        if best_state is None:
            raise ValueError(f"the val criterion was never finite ({self.val_loss_[-1]}); lower lr")
        module.load_state_dict(best_state)
        module.eval()
        self.module_ = module

    def _train_epoch(self, module, optimizer, data: TrainingData, generator: torch.Generator) -> float:
        module.train()
        order = self.epoch_order(data, generator)
        total = 0.0
        for start in range(0, order.numel(), self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) < 2:  # BatchNorm needs two rows; this row is in other epochs' batches
                continue
            loss = self.batch_loss(module(data.X[batch]), data, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / max(1, order.numel())

    def epoch_order(self, data: TrainingData, generator: torch.Generator) -> torch.Tensor:
        """The training rows one epoch visits, in order (default: each row once, shuffled)."""
        return torch.randperm(data.n, generator=generator)

    def batch_loss(self, logits: torch.Tensor, data: TrainingData, batch: torch.Tensor) -> torch.Tensor:
        """The loss of one mini-batch (default: the mean loss, row-weighted when weights were given)."""
        weight = None if data.weight is None else data.weight[batch]
        return loss_on_logits(logits, data.target[batch], weight=weight)

    def val_criterion(self, module: torch.nn.Module, data: TrainingData) -> float:
        """What picks the best epoch, lower is better (default: the mean (row-weighted) val loss)."""
        losses = val_losses(module, data)
        if data.weight_val is None:
            return float(losses.mean())
        return float((losses * data.weight_val).mean())

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


def val_losses(module: torch.nn.Module, data: TrainingData) -> torch.Tensor:
    """The loss of every val row (eval mode, no gradient), in chunks."""
    module.eval()
    with torch.no_grad():
        return torch.cat([
            loss_on_logits(module(data.X_val[s : s + CHUNK_ROWS]), data.target_val[s : s + CHUNK_ROWS], reduction="none")
            for s in range(0, data.X_val.shape[0], CHUNK_ROWS)
        ])


def _rows(values, rows: np.ndarray):
    return None if values is None else np.asarray(values)[rows]


def _codes(groups, n: int) -> torch.Tensor | None:
    """Group codes 0..G-1 as int64 (ValueError for a wrong length or negative codes); None stays None."""
    if groups is None:
        return None
    codes = np.asarray(groups).reshape(-1)
    if codes.size != n or not np.issubdtype(codes.dtype, np.integer) or (codes.size and codes.min() < 0):
        raise ValueError(f"groups must be {n} non-negative integer codes, one per row")
    return torch.from_numpy(codes.astype(np.int64))


def _initialise(module: torch.nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, drawn from `generator` instead of the global RNG."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
