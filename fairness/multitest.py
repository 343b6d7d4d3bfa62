"""Multiple-testing correction across the tests of one table: Holm (default) or Benjamini-Hochberg.

Holm (1979) controls the family-wise error rate: sort the m p-values, multiply the i-th smallest by
(m - i + 1), carry the running maximum, cap at 1. Benjamini-Hochberg (1995) controls the false discovery
rate: the i-th smallest times m / i, running minimum from the largest, cap at 1. NaN p-values are left out
of the family and stay NaN.
"""

from __future__ import annotations

import numpy as np

from benchmark.core.errors import BenchError

METHODS = ("holm", "bh", "none")
ERR_METHOD = "unknown correction {method!r}; choose one of: " + ", ".join(METHODS)


def adjust_p_values(p_values, *, method: str = "holm") -> np.ndarray:
    """Adjusted p-values in the input order."""
    if method not in METHODS:
        raise BenchError(ERR_METHOD.format(method=method))
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    m = valid.size
    if m == 0:
        return adjusted
    if method == "none":
        adjusted[valid] = p[valid]
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    ranked = p[order]
    if method == "holm":
        scaled = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        scaled = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted
