"""Calibration figures from per-bin sums, so that replicates and permutations stay one matrix product.

Channels. A multi-label task has one channel per class (p_c against y_c). A single-label task has one
channel, the top label: the arg-max probability against whether the arg-max class is right (top-label
calibration, Kumar et al. 2019; the "confidence" ECE of Guo et al. 2017). Write d = p - y per channel.

Default `ece`: the debiased estimate of the squared l2 calibration error over 10 equal-mass bins
(edges: the deciles of the channel's scores on the whole test set),

    ECE^2 = sum_b (n_b / n) * U_b,   U_b = sum_{i != j in b} d_i d_j / (n_b (n_b - 1))

U_b is the U-statistic of (E[d | bin b])^2: unbiased, where the plug-in (mean_b d)^2 is biased upward by
Var(d) / n_b (Kumar, Liang & Ma, NeurIPS 2019, "Verified uncertainty calibration", debiased estimator;
with scores constant within a bin U_b is exactly their formula). Equal-mass bins follow Roelofs et al.,
AISTATS 2022 ("Mitigating bias in calibration error estimation"). The value can be negative when the
calibration error is below the noise; the group with 60 images and the group with 600 images of perfectly
calibrated scores both estimate 0, so their gap is centred on 0 (a test checks the coverage).

With weights w_i (bootstrap counts, prevalence reweighting), pairs of an image with itself (or its own
copies) are left out: U_b = (S_b^2 - sum w_i^2 d_i^2) / (W_b^2 - sum w_i^2), S_b = sum w_i d_i, W_b = sum
w_i. So each bin needs four sums: W, S (weights w) and sum w^2 d^2, sum w^2 (weights w^2: the "square"
features, multiplied by the squared replicate weights). Without this a bootstrap replicate would re-introduce
the plug-in bias that the estimator removes.

`ece_binned`: the peers' 10 equal-width bins, sum_b (n_b / n) |mean_b p - mean_b y| (MEDFAIR, FairMedFM,
CXR_Fairness): biased upward, more so in small groups; kept to compare with their numbers.
"""

from __future__ import annotations

import numpy as np

N_BINS = 10
LINEAR_BLOCKS = ("width_sum", "mass_count", "mass_sum")
"""Per channel and bin: equal-width sum of d; equal-mass weight and sum of d."""
SQUARE_BLOCKS = ("mass_square", "mass_square_count")
"""Per channel and bin, weighted by w^2: sum of d^2 and of 1."""


def block(blocks: tuple, name: str, n_channels: int, start: int = 0) -> slice:
    """Columns of block `name` of `LINEAR_BLOCKS` or `SQUARE_BLOCKS`, the calibration columns starting at `start`."""
    width = n_channels * N_BINS
    offset = start + blocks.index(name) * width
    return slice(offset, offset + width)


def channels(y: np.ndarray, p: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores [n, K], outcomes [n, K]) of the calibration channels (see the module docstring)."""
    if kind == "single":
        top = np.argmax(p, axis=1)
        rows = np.arange(p.shape[0])
        return p[rows, top][:, None], y[rows, top][:, None].astype(np.float64)
    return p, y.astype(np.float64)


def width_bins(scores: np.ndarray) -> np.ndarray:
    """Equal-width bin 0..9 of each score on [0, 1] (a score of 1 falls in the last bin)."""
    return np.minimum((np.asarray(scores) * N_BINS).astype(np.int64), N_BINS - 1)


def mass_bins(scores: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Equal-mass bin 0..9 of each score [n, K], per channel: cut at the deciles of the channel's scores
    (equal scores share a bin, so ties can make bins unequal); `known` [n, K]: only those scores set the cuts
    (a masked entry is left out of its channel)."""
    bins = np.empty(scores.shape, dtype=np.int64)
    for k in range(scores.shape[1]):
        chosen = scores[:, k] if known is None or not known[:, k].any() else scores[known[:, k], k]
        edges = np.quantile(chosen, np.linspace(0.0, 1.0, N_BINS + 1)[1:-1])
        bins[:, k] = np.searchsorted(edges, scores[:, k], side="right")
    return bins


def _one_hot(start: int, bins: np.ndarray, values: np.ndarray, width: int):
    """Sparse [n, width] with values[i, k] at column start + k * N_BINS + bins[i, k]."""
    from scipy import sparse

    n, k = bins.shape
    columns = start + np.arange(k)[None, :] * N_BINS + bins
    rows = np.repeat(np.arange(n), k)
    return sparse.csr_matrix((values.reshape(-1), (rows, columns.reshape(-1))), shape=(n, width))


def features(scores, outcomes, multipliers=None, known=None) -> tuple:
    """Per-image calibration features as sparse matrices (one non-zero per channel and block): linear
    [n, 3 K N_BINS] (`LINEAR_BLOCKS`) and square [n, 2 K N_BINS] (`SQUARE_BLOCKS`). `multipliers` [n, K]: a
    fixed weight per image and channel (default 1; 0 for a masked entry); `known`: see `mass_bins`."""
    from scipy import sparse

    n, k = scores.shape
    r = np.ones((n, k)) if multipliers is None else multipliers
    d = scores - outcomes
    block = k * N_BINS
    equal_mass = mass_bins(scores, known)
    linear = sparse.hstack([_one_hot(0, width_bins(scores), r * d, block), _one_hot(0, equal_mass, r, block),
                            _one_hot(0, equal_mass, r * d, block)], format="csr")
    square = sparse.hstack([_one_hot(0, equal_mass, r * r * d * d, block), _one_hot(0, equal_mass, r * r, block)],
                           format="csr")
    return linear, square


def _ratio(numerator, denominator, floor: float = 0.0):
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > floor)
    return out


def debiased_squared_error(linear: np.ndarray, square: np.ndarray, n_channels: int) -> np.ndarray:
    """[..., K] debiased squared calibration error per channel from group sums `linear` [..., 3 K N_BINS]
    and `square` [..., 2 K N_BINS]; NaN for a group without images."""
    shape = linear.shape[:-1] + (3, n_channels, N_BINS)
    _, weight, total = np.moveaxis(linear.reshape(shape), -3, 0)
    squares, square_weight = np.moveaxis(square.reshape(linear.shape[:-1] + (2, n_channels, N_BINS)), -3, 0)
    pairs = weight * weight - square_weight  # weight of (i, j) pairs of different images in the bin
    within = np.where(pairs > 1e-9 * np.maximum(weight * weight, 1.0), _ratio(total * total - squares, pairs), 0.0)
    group = weight.sum(axis=-1)
    return _ratio((weight * within).sum(axis=-1), group)


def binned_error(linear: np.ndarray, n_channels: int) -> np.ndarray:
    """[..., K] equal-width 10-bin ECE per channel: sum_b |sum_b d| / n."""
    shape = linear.shape[:-1] + (3, n_channels, N_BINS)
    width_sum, weight, _ = np.moveaxis(linear.reshape(shape), -3, 0)
    return _ratio(np.abs(width_sum).sum(axis=-1), weight.sum(axis=-1))
