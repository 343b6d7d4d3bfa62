"""How well an attribute can be read from predictions: AUC with a patient-clustered bootstrap CI.

    figure = attribute_auc(levels=codes, probabilities=p, patient_ids=pid, n_boot=1000, seed=0)

Used by the demographic-encoding probes (`bench probe`: a linear probe predicts sex, age group, race or insurance
from an encoder's embeddings; Glocker et al., Radiology: AI 2023; Gichoya et al., Lancet Digital Health 2022).
Two levels: the AUC of the second level's probability. More: the macro one-vs-rest AUC. The bootstrap is the
fairness engine's (`fairness.resampling`): patients are drawn with replacement within strata (the level of their
first image), an image weighs its patient's draw count, and the weighted AUC (Mann-Whitney with ties counted
one half) is computed for every replicate at once.
"""

from __future__ import annotations

import numpy as np

from fairness.report import Figure
from fairness.resampling import bootstrap_counts, first_index, percentile_interval

REPLICATE_CHUNK = 200


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of `scores` for the 0/1 `positive` labels under each column of row weights [n, B] -> [B] (NaN where a
    replicate has no positive or no negative weight)."""
    order = np.argsort(scores, kind="mergesort")
    ordered, weights = scores[order], weights[order]
    is_positive = positive[order].astype(bool)
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]  # blocks of tied scores
    pos = np.add.reduceat(np.where(is_positive[:, None], weights, 0.0), starts, axis=0)
    neg = np.add.reduceat(np.where(is_positive[:, None], 0.0, weights), starts, axis=0)
    below = np.cumsum(neg, axis=0) - neg
    total = pos.sum(axis=0) * neg.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (pos * (below + 0.5 * neg)).sum(axis=0) / total, np.nan)


def macro_attribute_auc(levels: np.ndarray, probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[B] AUC: of the second level's probability for two levels, macro one-vs-rest for more."""
    if probabilities.shape[1] == 2:
        return weighted_auc(probabilities[:, 1], levels == 1, weights)
    per_level = [weighted_auc(probabilities[:, k], levels == k, weights) for k in range(probabilities.shape[1])]
    return np.nanmean(np.stack(per_level), axis=0)


def attribute_auc(*, levels, probabilities, patient_ids, n_boot: int = 1000, seed: int = 0,
                  confidence: float = 0.95) -> Figure:
    """The AUC of predicting `levels` (codes 0..K-1) from `probabilities` [n, K], with a patient-clustered,
    level-stratified bootstrap CI (`n_boot` replicates from a generator seeded by `seed`)."""
    levels = np.asarray(levels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    _, patient_index = np.unique(np.asarray(patient_ids).astype(str), return_inverse=True)
    value = float(macro_attribute_auc(levels, probabilities, np.ones((levels.size, 1)))[0])
    if n_boot <= 0:
        return Figure(value=value, ci=(float("nan"), float("nan")))
    n_patients = int(patient_index.max()) + 1
    strata = levels[first_index(patient_index, n_patients)]
    counts = bootstrap_counts(strata, n_boot=n_boot, rng=np.random.default_rng([seed, 3]))
    replicates = np.concatenate([
        macro_attribute_auc(levels, probabilities, counts[patient_index, start : start + REPLICATE_CHUNK])
        for start in range(0, n_boot, REPLICATE_CHUNK)
    ])
    return Figure(value=value, ci=percentile_interval(replicates, confidence=confidence), replicates=replicates)
