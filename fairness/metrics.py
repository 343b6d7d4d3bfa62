"""Per-group, per-class metrics from atom statistics, for every replicate at once.

All arrays carry a leading replicate axis B. Per-class metrics are [B, G, C] (G groups, C classes); a
metric whose denominator is zero is NaN (undefined), never 0 or 1. Definitions (one-vs-rest per class;
for a single-label task the decision is the arg-max class):

    TPR = TP / P        FNR = FN / P        FPR = FP / N        TNR = TN / N
    precision = TP / (TP + FP)              selection rate = (TP + FP) / n
    F1 = 2 TP / (2 TP + FP + FN)            accuracy_c = (TP + TN) / n
    Brier = sum (p - y)^2 / n             AUC = weighted Mann-Whitney U / (P x N), ties counting one half

Per class, n, P and N count only the images whose label of that class is known: a masked entry (multi-label,
`--uncertain ignore`) is left out of its class, never counted as a negative.

Per group (not per class): balanced accuracy (single-label: mean_c TPR_c, scikit-learn's
`balanced_accuracy_score`; multi-label: mean_c (TPR_c + TNR_c) / 2), the calibration errors of
`fairness.calibration` (`ece`: debiased squared l2 error over equal-mass bins, `ece_binned`: 10 equal-width
bins; both the mean over the calibration channels), and the task's utility (`utility`: macro AUC for
multi-label and binary tasks, balanced accuracy for single-label tasks).

Group accuracy is the share of images whose decision is right in every class: for a single-label task the
arg-max accuracy; for a multi-label task the exact-match (subset) accuracy as scikit-learn computes it.
Macro = mean over the classes where the metric is defined (for F1 this is scikit-learn's macro F1, which
averages over the labels present in y_true or y_pred); worst = the lowest (highest for error rates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairness import calibration
from fairness.stats import AtomStats

PER_CLASS = ("auc", "accuracy", "f1", "precision", "tpr", "fpr", "tnr", "fnr", "selection_rate", "brier", "abs_error")
LOWER_IS_BETTER = frozenset({"fpr", "fnr", "brier", "abs_error"})


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@dataclass
class GroupMetrics:
    """Metrics of G groups over B replicates: `per_class[name]` [B, G, C], `count` [B, G],
    `positives` / `negatives` [B, G, C], and the per-group `accuracy`, `balanced_accuracy`, `ece`,
    `ece_binned` [B, G]; `kind` "single" or "multi"."""

    per_class: dict
    count: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray
    accuracy: np.ndarray
    balanced_accuracy: np.ndarray
    ece: np.ndarray
    ece_binned: np.ndarray
    kind: str

    def utility(self) -> np.ndarray:
        """[B, G] the task's utility: macro AUC (multi-label, binary) or balanced accuracy (single-label)."""
        return self.balanced_accuracy if self.kind == "single" else self.macro("auc")

    def macro(self, name: str) -> np.ndarray:
        """[B, G] mean over the classes where the metric is defined."""
        return nanmean(self.per_class[name], axis=2)

    def worst(self, name: str) -> np.ndarray:
        values = self.per_class[name]
        return nanreduce(values, axis=2, reducer=np.max if name in LOWER_IS_BETTER else np.min)


def nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; NaN (without a warning) where every value is NaN."""
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    return _ratio(total, finite.sum(axis=axis))


def nanreduce(values: np.ndarray, *, axis: int, reducer) -> np.ndarray:
    """`reducer` (np.min / np.max) ignoring NaN; NaN where every value is NaN."""
    finite = np.isfinite(values)
    fill = np.inf if reducer is np.min else -np.inf
    out = reducer(np.where(finite, values, fill), axis=axis)
    return np.where(finite.any(axis=axis), out, np.nan)


def nanvar(values: np.ndarray, axis: int, ddof: int = 1) -> np.ndarray:
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    mean = nanmean(values, axis=axis)
    squares = np.where(finite, (values - np.expand_dims(mean, axis)) ** 2, 0.0).sum(axis=axis)
    return _ratio(squares, count - ddof)


def group_metrics(stats: AtomStats, masks: np.ndarray, *, kind: str) -> GroupMetrics:
    """Metrics of the groups given as atom masks [G, K_all] (over the GroupSet's atoms)."""
    layout = stats.layout
    member = masks[:, stats.atoms].astype(np.float64)  # [G, K]
    sums = np.moveaxis(np.tensordot(stats.sums, member, axes=([1], [1])), 2, 1)  # [B, K, F] x [G, K] -> [B, G, F]
    squares = np.moveaxis(np.tensordot(stats.squares, member, axes=([1], [1])), 2, 1)
    count = sums[:, :, layout["count"]][:, :, 0]
    n = sums[:, :, layout["class_count"]]  # per class: images whose label is known (masked entries left out)
    positives = sums[:, :, layout["positives"]]
    predicted = sums[:, :, layout["predicted"]]
    tp = sums[:, :, layout["true_positives"]]
    fp = predicted - tp
    fn = positives - tp
    negatives = n - positives
    tn = negatives - fp
    pairs = np.einsum("bckl,gk,gl->bgc", stats.pairs, member, member)
    per_class = {
        "auc": _ratio(pairs, positives * negatives),
        "accuracy": _ratio(tp + tn, n),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": _ratio(tp, predicted),
        "tpr": _ratio(tp, positives),
        "fpr": _ratio(fp, negatives),
        "tnr": _ratio(tn, negatives),
        "fnr": _ratio(fn, positives),
        "selection_rate": _ratio(predicted, n),
        "brier": _ratio(sums[:, :, layout["squared_error"]], n),
        "abs_error": _ratio(sums[:, :, layout["abs_error"]], n),
    }
    if kind == "single":
        balanced = nanmean(per_class["tpr"], axis=2)
    else:
        balanced = nanmean((per_class["tpr"] + per_class["tnr"]) / 2, axis=2)
    linear = sums[:, :, layout["calibration"]]
    return GroupMetrics(
        per_class=per_class, count=count, positives=positives, negatives=negatives,
        accuracy=_ratio(sums[:, :, layout["correct"]][:, :, 0], count), balanced_accuracy=balanced,
        ece=nanmean(calibration.debiased_squared_error(linear, squares, layout.n_channels), axis=2),
        ece_binned=nanmean(calibration.binned_error(linear, layout.n_channels), axis=2), kind=kind,
    )
