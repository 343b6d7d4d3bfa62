"""`--compare RUN_A [RUN_B]`: the paired bootstrap difference A - B of every figure, with its CI and p-value.

Both runs must be on the same test set (the leaderboard evaluates every run with the same seed, so their
replicates share the patient draws: `fairness.paired_difference`). Without RUN_B, A is compared with the
top-ranked run (or, when A is the top run, with the second). The p-values (two-sided bootstrap, "difference
= 0") are also corrected across the figures compared (Holm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import BenchError

ERR_SAME = "--compare {a} {b}: both name the run {name!r}; name two different runs"
ERR_ALONE = "--compare needs two runs on the leaderboard; there is only {name!r}"
ERR_UNPAIRED = (
    "{a!r} and {b!r} are evaluated on different test sets (or with other options), so their replicates are not "
    "paired; compare runs made on the same test images"
)


@dataclass
class Difference:
    """One figure of A against B: both values, A - B with its paired-bootstrap CI and p-values."""

    figure: str
    a: float
    b: float
    difference: float
    ci: tuple[float, float]
    p_value: float | None
    p_adj: float | None = None


@dataclass
class Comparison:
    a: str
    b: str
    differences: list
    n_boot: int


def pick(board, names) -> tuple:
    """The two entries to compare: both named, or the named one and the top-ranked (second when it is top)."""
    first = board.entry(names[0])
    if len(names) > 1:
        second = board.entry(names[1])
        if second is first:
            raise BenchError(ERR_SAME.format(a=names[0], b=names[1], name=first.run.name))
        return first, second
    others = [e for e in board.entries if e is not first]
    if not others:
        raise BenchError(ERR_ALONE.format(name=first.run.name))
    return first, others[0]


def compare(board, names, *, correction: str = "holm") -> Comparison:
    """Paired differences of every figure both runs have (figures with replicates get a CI and p)."""
    from fairness import paired_difference
    from fairness.multitest import adjust_p_values

    a, b = pick(board, names)
    if a.report.resampling_key != b.report.resampling_key:
        raise BenchError(ERR_UNPAIRED.format(a=a.run.name, b=b.run.name))
    names_both = [name for name in a.report.figures if name in b.report.figures]
    confidence = a.report.options.get("confidence", 0.95)
    rows = []
    for name in names_both:
        paired = paired_difference(a.report, b.report, name, confidence=confidence)
        rows.append(Difference(name, a.value(name), b.value(name), paired.value, paired.ci, paired.p_value))
    adjusted = adjust_p_values([np.nan if r.p_value is None else r.p_value for r in rows], method=correction)
    for row, p_adj in zip(rows, adjusted):
        row.p_adj = float(p_adj) if np.isfinite(p_adj) else None
    return Comparison(a.run.name, b.run.name, rows, int(a.report.options.get("n_boot") or 0))
