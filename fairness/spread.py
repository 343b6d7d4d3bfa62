"""How much a figure moves across variants of one run (e.g. zero-shot with several prompt sets) on one test set.

    table = spread_across({"family": report_a, "chexzero-pairs": report_b, ...}, ["macro_auc", "auc_gap_sex"])
    table["macro_auc"].range.value, table["macro_auc"].range.ci, table["macro_auc"].sd

The range (max - min over the variants) carries a bootstrap CI when the reports share their resampling (the same
test images, seed and `n_boot`, e.g. one `ResamplingPlan`): it is computed within each replicate, so a range that
only reflects sampling noise has a CI reaching down to about the noise level, not to a fixed zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairness.report import FairnessReport, Figure
from fairness.resampling import percentile_interval


@dataclass
class Spread:
    """One figure across the variants: each variant's value, the range (with a CI) and the standard deviation."""

    values: dict
    range: Figure
    sd: float

    def as_dict(self) -> dict:
        return {"values": {name: (None if not np.isfinite(v) else float(v)) for name, v in self.values.items()},
                "range": self.range.as_dict(), "sd": None if not np.isfinite(self.sd) else float(self.sd)}


def spread_across(reports: dict[str, FairnessReport], names, *, confidence: float = 0.95) -> dict[str, Spread]:
    """{figure: Spread} for the figures every report has (see the module docstring)."""
    paired = len({report.resampling_key for report in reports.values()}) == 1
    out = {}
    for name in names:
        figures = {variant: report.figures.get(name) for variant, report in reports.items()}
        if any(figure is None for figure in figures.values()):
            continue
        values = {variant: figure.value for variant, figure in figures.items()}
        finite = np.array([v for v in values.values() if np.isfinite(v)])
        value = float(finite.max() - finite.min()) if finite.size else float("nan")
        sd = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
        ci = (float("nan"), float("nan"))
        if paired and all(figure.replicates is not None for figure in figures.values()):
            stacked = np.stack([figure.replicates for figure in figures.values()])
            ci = percentile_interval(stacked.max(axis=0) - stacked.min(axis=0), confidence=confidence)
        out[name] = Spread(values=values, range=Figure(value=value, ci=ci), sd=sd)
    return out
