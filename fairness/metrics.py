"""Per-group, per-class metrics from atom statistics, for every replicate at once.

All arrays carry a leading replicate axis B. Per-class metrics are [B, G, C] (G groups, C classes); a
metric whose denominator is zero is NaN (undefined), never 0 or 1. Definitions (one-vs-rest per class;
for a single-label task the decision is the arg-max class):

    TPR = TP / P        FNR = FN / P        FPR = FP / N        TNR = TN / N
    precision = TP / (TP + FP)              selection rate = (TP + FP) / n
    F1 = 2 TP / (2 TP + FP + FN)            accuracy_c = (TP + TN) / n
    ECE = sum over 10 equal-width probability bins of |sum (p - y)| / n   (= sum_b n_b/n |mean p - mean y|)
    AUC = weighted Mann-Whitney U / (P x N), ties counting one half

Group accuracy is the share of images whose decision is right in every class: for a single-label task the
arg-max accuracy; for a multi-label task the exact-match (subset) accuracy as scikit-learn computes it.
Macro = mean over the classes where the metric is defined (for F1 this is scikit-learn's macro F1, which
averages over the labels present in y_true or y_pred); worst = the lowest (highest for error rates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairness.stats import N_BINS, AtomStats

PER_CLASS = ("auc", "accuracy", "f1", "precision", "tpr", "fpr", "tnr", "fnr", "selection_rate", "ece", "abs_error")
LOWER_IS_BETTER = frozenset({"fpr", "fnr", "ece", "abs_error"})


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@dataclass
class GroupMetrics:
    """Metrics of G groups over B replicates: `per_class[name]` [B, G, C], `count` [B, G],
    `positives` [B, G, C], `accuracy` [B, G]."""

    per_class: dict
    count: np.ndarray
    positives: np.ndarray
    accuracy: np.ndarray

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
    sums = np.einsum("bkf,gk->bgf", stats.sums, member)
    count = sums[:, :, layout.count]
    positives = sums[:, :, layout.positives()]
    predicted = sums[:, :, layout.predicted()]
    tp = sums[:, :, layout.true_positives()]
    fp = predicted - tp
    fn = positives - tp
    n = count[:, :, None]
    negatives = n - positives
    tn = negatives - fp
    classes = layout.n_classes
    calibration = sums[:, :, layout.calibration()].reshape(sums.shape[0], sums.shape[1], classes, N_BINS)
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
        "ece": _ratio(np.abs(calibration).sum(axis=3), n),
        "abs_error": _ratio(sums[:, :, layout.abs_error()], n),
    }
    accuracy = _ratio(sums[:, :, layout.correct], count)
    return GroupMetrics(per_class=per_class, count=count, positives=positives, accuracy=accuracy)
