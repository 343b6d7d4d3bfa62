"""Threshold curves of one binary problem, vectorised (the same cut points as scikit-learn's curves).

`binary_curve` sorts the scores once and returns, for each distinct score t (from high to low), the
numbers of true and false positives when every image scoring >= t is called positive. F1-max and Youden
thresholds and average precision follow from it without a Python loop per threshold; they equal
scikit-learn's `precision_recall_curve` / `roc_curve` / `average_precision_score` (tests check this).
"""

from __future__ import annotations

import numpy as np


def binary_curve(y: np.ndarray, scores: np.ndarray, *, presorted: bool = False):
    """(thresholds, tp, fp) at each distinct score, from the highest score down.

    `presorted`: the scores are already in decreasing order (skips the sort)."""
    if presorted:
        sorted_scores, sorted_y = scores, y.astype(np.float64)
    else:
        order = np.argsort(-scores, kind="mergesort")
        sorted_scores = scores[order]
        sorted_y = y[order].astype(np.float64)
    last_of_value = np.flatnonzero(np.diff(sorted_scores)) if sorted_scores.size else np.zeros(0, dtype=np.int64)
    ends = np.r_[last_of_value, sorted_scores.size - 1]
    tp = np.cumsum(sorted_y)[ends]
    fp = (ends + 1) - tp
    return sorted_scores[ends], tp, fp


def f1_max_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (call >= it positive) with the highest F1; +inf if there is no positive."""
    positives = float(np.sum(y))
    if positives == 0:
        return float("inf")
    thresholds, tp, fp = binary_curve(y, scores)
    f1 = 2 * tp / (tp + fp + positives)
    best = f1.size - 1 - int(np.argmax(f1[::-1]))  # the lowest threshold among equal F1 (as scikit-learn)
    return float(thresholds[best])


def youden_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the highest TPR - FPR (first such from the top); 0.5 if a class is missing."""
    positives = float(np.sum(y))
    negatives = float(y.size - positives)
    if positives == 0 or negatives == 0:
        return 0.5
    thresholds, tp, fp = binary_curve(y, scores)
    return float(thresholds[int(np.argmax(tp / positives - fp / negatives))])


def average_precision(y: np.ndarray, scores: np.ndarray, *, presorted: bool = False) -> float:
    """Average precision, sum over thresholds of (recall step) x precision (scikit-learn's definition)."""
    positives = float(np.sum(y))
    if positives == 0:
        return float("nan")
    _, tp, fp = binary_curve(y, scores, presorted=presorted)
    precision = tp / (tp + fp)
    recall_step = np.diff(np.r_[0.0, tp]) / positives
    return float(np.sum(recall_step * precision))
