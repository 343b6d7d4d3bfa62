"""Linear probe: L2-regularised logistic regression on frozen image embeddings, C chosen on val.

The objective is scikit-learn's, so C means the same thing here as in `LogisticRegression`:
`C * sum_i loss_i + 0.5 * ||W||^2` (intercept unpenalised), with softmax cross-entropy for single-label
tasks and independent sigmoids (one binary problem per class, i.e. one-vs-rest) for multi-label tasks.

Why our own solver: scikit-learn's lbfgs copies the features to float64 and, one-vs-rest, streams them once
per class per iteration. Here every class is solved jointly as one [dim, classes] matrix problem in float32
(one matrix product per iteration for all classes) by full-batch L-BFGS on standardised features, and the C
path runs from strong to weak regularisation with warm starts. `bench perf heads` shows the ratio.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator

from heads.common import (
    CHUNK_ROWS,
    HeadRecord,
    checked_features,
    holdout_rows,
    loss_on_logits,
    macro_auc,
    n_outputs,
    probabilities_from_logits,
    row_weights,
    standardisation,
    target_tensor,
    task_kind_of,
    to_float32,
)

DEFAULT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class LinearProbe(HeadRecord, BaseEstimator):
    """Logistic-regression probe (softmax or per-class sigmoids) with C selected on a validation set.

    Parameters
    ----------
    Cs: inverse regularisation strengths to sweep (sorted ascending internally; warm starts along the path).
    scoring: "loss" (val log-loss, lower is better) or "auc" (val macro ROC AUC) to pick C.
    max_iter: L-BFGS iterations per C.
    tol: stop when the largest gradient entry falls below this.
    standardize: fit on standardised features (folded back into `coef_`, so inputs stay raw).
    holdout, random_state: when `fit` gets no validation set, this fraction of the training rows is held out
        (chosen with `np.random.default_rng(random_state)`) to pick C.
    n_classes: number of classes for single-label labels (default: max label + 1).

    Learned attributes: `coef_` [classes, dim], `intercept_` [classes], `C_` (chosen), `kind_`,
    `scores_` (val score per C), `n_iter_` (L-BFGS iterations per C), `constant_classes_` (bool mask of
    classes without both labels in train: zero weights, smoothed prior intercept).
    """

    def __init__(
        self,
        Cs=DEFAULT_CS,
        *,
        scoring: str = "loss",
        max_iter: int = 100,
        tol: float = 1e-4,
        standardize: bool = True,
        holdout: float = 0.1,
        random_state: int = 0,
        n_classes: int | None = None,
    ):
        self.Cs = Cs
        self.scoring = scoring
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize
        self.holdout = holdout
        self.random_state = random_state
        self.n_classes = n_classes

    def fit(self, X, y, X_val=None, y_val=None, *, row_weight=None, val_row_weight=None) -> "LinearProbe":
        """Fit on (X, y), choosing C on (X_val, y_val). `row_weight` / `val_row_weight` (one per row, e.g. group
        balancing) weigh each row's loss in the fit / in the val loss that picks C (val AUC is unweighted). Not
        scikit-learn's `sample_weight`: a held-out split does not treat a weight of 2 as a repeated row."""
        if self.scoring not in ("loss", "auc"):
            raise ValueError(f"scoring must be 'loss' or 'auc', got {self.scoring!r}")
        Cs = sorted(float(c) for c in self.Cs)
        if not Cs or min(Cs) <= 0:
            raise ValueError(f"Cs must be positive numbers, got {self.Cs!r}")
        X = checked_features(self, X, fitting=True)
        y = np.asarray(y)
        self.kind_ = task_kind_of(y)
        if X_val is not None:
            X_val = checked_features(self, X_val, fitting=False)
        row_weights(row_weight, len(y))  # checked before any split
        if X_val is None:
            train, val = holdout_rows(len(y), self.holdout, self.random_state)
            X, X_val, y, y_val = X[train], X[val], y[train], y[val]
            if row_weight is not None:
                row_weight, val_row_weight = np.asarray(row_weight)[train], np.asarray(row_weight)[val]
        n_classes = n_outputs(y, self.n_classes if self.n_classes is not None else _max_label(y, y_val))
        weight, weight_val = row_weights(row_weight, len(y)), row_weights(val_row_weight, len(y_val))

        X_train = to_float32(X)
        if self.standardize:
            mean, std = standardisation(X_train)
            X_train.sub_(mean).div_(std)
        else:
            mean, std = torch.zeros(X_train.shape[1]), torch.ones(X_train.shape[1])
        target = target_tensor(y)
        X_valid = (to_float32(X_val) - mean) / std
        y_val = np.asarray(y_val)
        target_val = target_tensor(y_val)

        n, dim = X_train.shape
        # Columns padded to a multiple of 8: BLAS kernels run skinny products about 2x faster that way.
        coef = torch.zeros(dim, -(-n_classes // 8) * 8, requires_grad=True)
        bias = torch.tensor(_prior_logits(y, n_classes, self.kind_, weight), requires_grad=True)
        self.constant_classes_ = _constant_classes(y, n_classes)
        frozen = torch.from_numpy(self.constant_classes_)
        self.scores_, self.n_iter_ = {}, {}
        best = None
        for C in Cs:
            penalty = 1.0 / (C * n)
            self.n_iter_[C] = fit_lbfgs(X_train, target, coef, bias, penalty, self.max_iter, self.tol, frozen, weight)
            with torch.no_grad():
                logits = (X_valid @ coef)[:, :n_classes] + bias
                score = self._score(logits, target_val, y_val, weight_val)
            self.scores_[C] = score
            better = best is None or (score < best[0] if self.scoring == "loss" else score > best[0])
            if better:
                best = (score, C, coef.detach()[:, :n_classes].clone(), bias.detach().clone())
        _, self.C_, coef, bias = best
        self.coef_ = (coef / std[:, None]).T.contiguous().numpy()
        self.intercept_ = (bias - (mean / std) @ coef).numpy()
        return self

    def chosen_on_val(self) -> dict:
        return {"C": self.C_, "val_score_by_C": {str(c): s for c, s in self.scores_.items()}, "scoring": self.scoring}

    def _score(self, logits: torch.Tensor, target: torch.Tensor, y_val: np.ndarray, weight=None) -> float:
        if self.scoring == "loss":
            return float(loss_on_logits(logits, target, weight=weight))
        return macro_auc(y_val, probabilities_from_logits(logits, self.kind_).numpy())

    def decision_function(self, X) -> np.ndarray:
        X = checked_features(self, X, fitting=False)
        coef = torch.from_numpy(self.coef_).T
        intercept = torch.from_numpy(self.intercept_)
        out = np.empty((X.shape[0], coef.shape[1]), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, X.shape[0], CHUNK_ROWS):
                chunk = to_float32(X[start : start + CHUNK_ROWS])
                out[start : start + CHUNK_ROWS] = (chunk @ coef + intercept).numpy()
        return out

    def predict_proba(self, X) -> np.ndarray:
        logits = torch.from_numpy(self.decision_function(X))
        return probabilities_from_logits(logits, self.kind_).numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        probabilities = self.predict_proba(X)
        return probabilities.argmax(axis=1) if self.kind_ == "single" else (probabilities >= 0.5).astype(np.int8)


def fit_lbfgs(X, target, weight, bias, penalty: float, max_iter: int, tol: float, frozen: torch.Tensor,
           row_weight: torch.Tensor | None = None) -> int:
    """Minimise mean (row-weighted) loss + penalty/2 * ||weight||^2 by full-batch L-BFGS; returns iterations run.

    Columns in `frozen` keep their starting values (their gradients are zeroed).
    """
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-10,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    n, n_classes = X.shape[0], bias.shape[0]
    single = target.dtype == torch.int64
    dense_target = torch.nn.functional.one_hot(target, n_classes).float() if single else torch.nan_to_num(target)
    observed = None if single else (~torch.isnan(target)).float()  # masked labels (NaN) give no gradient
    scale = torch.full((n, 1), 1.0 / n) if row_weight is None else (row_weight / n)[:, None]
    if observed is not None:
        scale = scale * observed
    residual = torch.zeros(n, weight.shape[1])

    def closure():
        # Loss and gradient by hand: one product forward, one (residual^T X) backward, no autograd graph.
        with torch.no_grad():
            logits = (X @ weight)[:, :n_classes] + bias
            loss = loss_on_logits(logits, target, weight=row_weight) + 0.5 * penalty * weight.pow(2).sum()
            predicted = torch.softmax(logits, dim=1) if single else torch.sigmoid(logits)
            residual[:, :n_classes] = (predicted - dense_target) * scale
            weight.grad = ((residual.T @ X).T + penalty * weight).contiguous()
            bias.grad = residual[:, :n_classes].sum(dim=0)
            if frozen.any():
                weight.grad[:, :n_classes][:, frozen] = 0
                bias.grad[frozen] = 0
        return loss

    optimizer.step(closure)
    state = optimizer.state[optimizer._params[0]]
    return int(state.get("n_iter", 0))


def _prior_logits(y: np.ndarray, n_classes: int, kind: str, weight: torch.Tensor | None = None) -> np.ndarray:
    """Intercepts that reproduce the (row-weighted) training prior: a good, cheap starting point."""
    w = np.ones(len(y)) if weight is None else weight.numpy().astype(np.float64)
    if kind == "single":
        counts = np.bincount(y.astype(np.int64), weights=w, minlength=n_classes) + 1.0
        return np.log(counts / counts.sum()).astype(np.float32)
    observed = y >= 0  # masked labels (-1) count for neither side
    rate = (((y == 1) * w[:, None]).sum(axis=0) + 1.0) / ((observed * w[:, None]).sum(axis=0) + 2.0)
    return np.log(rate / (1 - rate)).astype(np.float32)


def _constant_classes(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Classes the training labels cannot separate (never positive, or always positive for multi-label).

    Their optimum lies at an infinite intercept; they keep zero weights and the smoothed prior intercept.
    """
    if y.ndim == 1:
        return np.bincount(y.astype(np.int64), minlength=n_classes) == 0
    positives = (y == 1).sum(axis=0)
    return (positives == 0) | (positives == (y >= 0).sum(axis=0))


def _max_label(y: np.ndarray, y_val) -> int | None:
    if y.ndim != 1:
        return None
    top = int(y.max())
    if y_val is not None and len(y_val):
        top = max(top, int(np.asarray(y_val).max()))
    return top + 1
