"""Resampling plans: patient-clustered stratified bootstrap weights and patient-level permutations.

Bootstrap: images of one patient are correlated, so the unit of resampling is the patient (MLforHealth's
CXR_Fairness does the same). Patients are split into strata by the atom (sex x age cell, ...) of their first
test image, and each stratum draws as many patients as it has, with replacement; so every group keeps
roughly its size and small groups stay present in every replicate. A replicate is a vector of draw counts
per patient; an image's weight is its patient's count. Everything is drawn from one seeded
`numpy.random.Generator`, so the same seed and the same test set give the same replicates — which is what
makes the paired comparison of two runs possible.

Permutation ("is this gap zero beyond case mix?"): the tested attribute's values are shuffled among
patients *within strata* — patients with the same labels (the label vector of their first image) and the
same values of the other attributes — so every permuted group keeps its prevalence of every label pattern
and its mix of the other attributes (Glocker et al., eBioMedicine 2023: gaps in F1, selection rate or
calibration can come from prevalence alone). The null is "given the labels (and the other attributes), the
model's outputs do not depend on the attribute". A patient keeps one value for all its images (that of its
first image). The Monte-Carlo p-value is (1 + #{|T_perm| >= |T_obs|}) / (1 + n_perm), never below
1 / (1 + n_perm) (Phipson & Smyth 2010); when it sits at that bound the report says so.
"""

from __future__ import annotations

import numpy as np


def first_index(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Position of the first occurrence of each key 0..n_keys-1."""
    first = np.full(n_keys, -1, dtype=np.int64)
    positions = np.arange(keys.size)
    first[keys[::-1]] = positions[::-1]
    return first


def bootstrap_counts(strata: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Draw counts [P, n_boot] for P patients (replicates last): within each stratum, as many draws with
    replacement as it has patients. `strata` [P] gives each patient's stratum."""
    strata = np.asarray(strata)
    counts = np.zeros((strata.size, n_boot), dtype=np.float32)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        size = members.size
        draws = rng.integers(0, size, size=(n_boot, size))
        flat = (draws * n_boot + np.arange(n_boot)[:, None]).reshape(-1)
        counts[members] = np.bincount(flat, minlength=size * n_boot).reshape(size, n_boot)
    return counts


def permuted_patient_codes(codes: np.ndarray, *, n_perm: int, rng: np.random.Generator,
                           strata: np.ndarray | None = None) -> np.ndarray:
    """[n_perm, P, A'] patient-level codes (rows of `codes` [P, A']) shuffled among the patients of each
    stratum (`strata` [P] integer codes; None: one stratum)."""
    n = codes.shape[0]
    if strata is None:
        order = rng.permuted(np.broadcast_to(np.arange(n), (n_perm, n)), axis=1)
        return codes[order]
    strata = np.asarray(strata, dtype=np.float64)
    order = np.argsort(strata[None, :] + rng.random((n_perm, n)), axis=1)  # by stratum, random within
    base = np.argsort(strata, kind="stable")
    permutation = np.empty_like(order)
    permutation[:, base] = order  # patient base[k] takes the codes of patient order[k], same stratum
    return codes[permutation]


def stratum_codes(*columns: np.ndarray) -> np.ndarray:
    """One integer code per row for the combination of the given [P] or [P, k] columns."""
    stacked = np.concatenate([np.asarray(c).reshape(len(c), -1) for c in columns], axis=1)
    return np.unique(stacked, axis=0, return_inverse=True)[1].reshape(-1)


def percentile_interval(replicates: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite replicates (NaN, NaN if fewer than 2 are finite)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def percentile_intervals(replicates: np.ndarray, *, confidence: float = 0.95) -> np.ndarray:
    """Percentile intervals [R, 2] of many rows of replicates [R, B] at once (NaN rows with < 2 finite)."""
    replicates = np.asarray(replicates, dtype=np.float64)
    ordered = np.sort(np.where(np.isfinite(replicates), replicates, np.nan), axis=1)  # NaN sort last
    finite = np.isfinite(replicates).sum(axis=1)
    out = np.full((replicates.shape[0], 2), np.nan)
    alpha = (1.0 - confidence) / 2.0
    rows = np.flatnonzero(finite >= 2)
    for column, q in enumerate((alpha, 1.0 - alpha)):  # numpy's default "linear" quantile, per row
        position = q * (finite[rows] - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, finite[rows] - 1)
        fraction = position - low
        out[rows, column] = ordered[rows, low] + fraction * (ordered[rows, high] - ordered[rows, low])
    return out


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """Monte-Carlo permutation p-value (1 + #{|T*| >= |T|}) / (1 + n); NaN when T is undefined.

    Never below 1 / (1 + n): that is the smallest p-value n permutations can give (`at_bound`)."""
    if not np.isfinite(observed):
        return float("nan")
    finite = permuted[np.isfinite(permuted)]
    tolerance = 1e-12 * max(1.0, abs(observed))
    extreme = int(np.sum(np.abs(finite) >= abs(observed) - tolerance))
    return float((1 + extreme) / (1 + finite.size))


def at_bound(p_value: float | None, n_perm: int) -> bool:
    """Whether a permutation p-value is the smallest that `n_perm` permutations can give."""
    return p_value is not None and np.isfinite(p_value) and p_value <= 1.0 / (1 + n_perm) + 1e-15


MDE_Z = 1.959963984540054 + 0.8416212335729143
"""z_(1 - 0.05/2) + z_0.80: a two-sided 5% test has 80% power against an effect of MDE_Z standard errors."""


def minimum_detectable_effect(replicates: np.ndarray | None) -> float | None:
    """The smallest effect a two-sided 5% test detects with 80% power, (z_0.975 + z_0.8) x SE, SE the
    standard deviation of the bootstrap replicates; None without two finite replicates."""
    if replicates is None:
        return None
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2:
        return None
    return float(MDE_Z * np.std(finite, ddof=1))


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value for "difference = 0": 2 x the smaller share of replicates on one side."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan")
    below = (np.sum(finite <= 0) + 1) / (finite.size + 1)
    above = (np.sum(finite >= 0) + 1) / (finite.size + 1)
    return float(min(1.0, 2 * min(below, above)))
