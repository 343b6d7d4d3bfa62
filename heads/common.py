"""Small helpers shared by the heads: label shapes, float32 tensors, standardisation, losses."""

from __future__ import annotations

import numpy as np
import torch

CHUNK_ROWS = 65536
FEATURE_DTYPES = (np.float32, np.float64, np.float16)


def checked_features(estimator, X, *, fitting: bool) -> np.ndarray:
    """X as a dense, finite, 2-D float array, checked the way scikit-learn checks it (clear messages for sparse,
    complex, NaN, 1-D or empty input). Fitting records `n_features_in_`; predicting needs a fitted estimator
    with the same number of features. float16 stays float16 (no copy of a large store)."""
    from sklearn.utils.validation import check_is_fitted, validate_data

    if not fitting:
        check_is_fitted(estimator)
    return validate_data(estimator, X, reset=fitting, dtype=list(FEATURE_DTYPES),
                         ensure_min_samples=2 if fitting else 1)


class HeadRecord:
    """What a prediction run records of a fitted head: its hyperparameters and what it chose on val."""

    def recorded_params(self) -> dict:
        return self.get_params(deep=False)

    def chosen_on_val(self) -> dict:
        return {}


def task_kind_of(y: np.ndarray) -> str:
    """"single" for a 1-D array of class indices, "multi" for a 2-D [n, C] 0/1 array."""
    y = np.asarray(y)
    if y.ndim == 1:
        return "single"
    if y.ndim == 2:
        return "multi"
    raise ValueError(f"labels must be 1-D class indices or a 2-D [n, classes] 0/1 array, got shape {y.shape}")


def n_outputs(y: np.ndarray, n_classes: int | None) -> int:
    """Number of output units: the given `n_classes`, else inferred from the labels."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.shape[1]
    return int(n_classes) if n_classes is not None else int(y.max()) + 1


def to_float32(X) -> torch.Tensor:
    """A float32 CPU tensor of `X` (converted chunk by chunk so float16 inputs never double in float64)."""
    if isinstance(X, torch.Tensor):
        return X.detach().to(dtype=torch.float32, device="cpu")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D [n, dim] array, got shape {X.shape}")
    out = torch.empty(X.shape, dtype=torch.float32)
    for start in range(0, X.shape[0], CHUNK_ROWS):
        out[start : start + CHUNK_ROWS] = torch.from_numpy(np.ascontiguousarray(X[start : start + CHUNK_ROWS], dtype=np.float32))
    return out


def target_tensor(y: np.ndarray) -> torch.Tensor:
    """Class indices as int64 (single-label) or 0/1 labels as float32 (multi-label), a masked label
    (`benchmark.core.schema.MASKED`, -1) as NaN."""
    y = np.asarray(y)
    if y.ndim == 1:
        return torch.from_numpy(y.astype(np.int64))
    target = torch.from_numpy(y.astype(np.float32))
    target[target < 0] = float("nan")
    return target


def standardisation(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation (floored so constant features stay finite)."""
    mean = X.mean(dim=0)
    std = X.std(dim=0).clamp_min(1e-6)
    return mean, std


def loss_on_logits(logits: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean",
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy for single-label, binary cross-entropy summed over classes for multi-label (masked labels,
    NaN in `target`, left out).

    `reduction` is "mean" or "sum" over rows, or "none" (one loss per row); `weight` (one per row) multiplies
    each row's loss first.
    """
    if target.dtype == torch.int64:
        per_row = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    else:
        observed = ~torch.isnan(target)
        per_entry = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.nan_to_num(target),
                                                                         reduction="none")
        per_row = torch.where(observed, per_entry, torch.zeros_like(per_entry)).sum(dim=1)  # masked labels add nothing
    if weight is not None:
        per_row = per_row * weight
    if reduction == "none":
        return per_row
    return per_row.mean() if reduction == "mean" else per_row.sum()


def probabilities_from_logits(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Softmax (single-label) or sigmoid (multi-label), in float64 so confident scores keep their order."""
    logits = logits.double()
    return torch.softmax(logits, dim=1) if kind == "single" else torch.sigmoid(logits)


def macro_auc(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that have both labels present (masked labels, -1, left out)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if y.ndim == 1:
        y = np.eye(probabilities.shape[1], dtype=np.int8)[y]
    observed = [y[:, c] >= 0 for c in range(y.shape[1])]
    scores = [
        roc_auc_score(y[observed[c], c], probabilities[observed[c], c])
        for c in range(y.shape[1])
        if 0 < y[observed[c], c].sum() < observed[c].sum()
    ]
    return float(np.mean(scores)) if scores else float("nan")


def holdout_rows(n: int, fraction: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, val rows): a random `fraction` of `n` rows (rng seeded by `random_state`) held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout must be in (0, 1) when no validation set is given, got {fraction}")
    order = np.random.default_rng(random_state).permutation(n)
    cut = max(1, int(round(n * fraction)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def row_weights(weight, n: int) -> torch.Tensor | None:
    """Row weights as float32, rescaled to mean 1 (so a penalty or learning rate means what it means without
    them); None stays None. ValueError for a wrong length, negative or non-finite weights, or all zero."""
    if weight is None:
        return None
    weight = np.asarray(weight, dtype=np.float64).reshape(-1)
    if weight.size != n or not np.all(np.isfinite(weight)) or np.any(weight < 0) or weight.sum() <= 0:
        raise ValueError(f"row weights must be {n} finite, non-negative numbers, not all zero")
    return torch.from_numpy((weight * (n / weight.sum())).astype(np.float32))
