"""Resampling plans: patient-clustered stratified bootstrap weights and patient-level permutations.

Bootstrap: images of one patient are correlated, so the unit of resampling is the patient (MLforHealth's
CXR_Fairness does the same). Patients are split into strata by the atom (sex x age cell, ...) of their first
test image, and each stratum draws as many patients as it has, with replacement; so every group keeps
roughly its size and small groups stay present in every replicate. A replicate is a vector of draw counts
per patient; an image's weight is its patient's count. Everything is drawn from one seeded
`numpy.random.Generator`, so the same seed and the same test set give the same replicates — which is what
makes the paired comparison of two runs possible.

Permutation ("is this gap zero?"): the tested attribute's values are shuffled among patients (a patient
keeps one value for all its images: the value of its first image), the other attributes stay, and the
figure is recomputed. The p-value is (1 + #{|T_perm| >= |T_obs|}) / (1 + n_perm).
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


def permuted_patient_codes(codes: np.ndarray, *, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """[n_perm, P, A'] patient-level codes (rows of `codes` [P, A']) shuffled among patients."""
    order = rng.permuted(np.broadcast_to(np.arange(codes.shape[0]), (n_perm, codes.shape[0])), axis=1)
    return codes[order]


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
    """Permutation p-value (1 + #{|T*| >= |T|}) / (1 + n); NaN when T is undefined.

    When no permutation reaches the observed value the count says only p < 1/(n+1), too coarse for a
    correction across many tests; the tail is then extrapolated with a normal fit to the permutation
    distribution (one-sided for non-negative statistics such as max - min gaps, two-sided otherwise).
    """
    from scipy.stats import norm

    if not np.isfinite(observed):
        return float("nan")
    finite = permuted[np.isfinite(permuted)]
    tolerance = 1e-12 * max(1.0, abs(observed))
    extreme = int(np.sum(np.abs(finite) >= abs(observed) - tolerance))
    p_value = (1 + extreme) / (1 + finite.size)
    spread = float(np.std(finite)) if finite.size > 1 else 0.0
    if extreme == 0 and spread > 0:
        z = (abs(observed) - float(np.mean(np.abs(finite)))) / float(np.std(np.abs(finite)) or spread)
        if np.all(finite >= 0):
            tail = float(norm.sf(z))
        else:
            tail = float(2 * norm.sf(abs(observed - float(np.mean(finite))) / spread))
        p_value = min(p_value, tail)
    return float(p_value)


def bootstrap_p_value(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value for "difference = 0": 2 x the smaller share of replicates on one side."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan")
    below = (np.sum(finite <= 0) + 1) / (finite.size + 1)
    above = (np.sum(finite >= 0) + 1) / (finite.size + 1)
    return float(min(1.0, 2 * min(below, above)))
