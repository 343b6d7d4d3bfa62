"""Did a mitigation shrink a gap, and how: by levelling up (the worst-off group gained) or down (the better-off
group lost, or everyone did)?

    outcome = compare_mitigation(plain, mitigated, gap="auc_gap_sex", attribute="sex", utility="auc")
    outcome.gap_change      # Figure: mitigated - plain, with a paired bootstrap CI
    outcome.verdict, outcome.describe()

Both reports must come from `evaluate` on the same test images with the same seed and `n_boot` (e.g. one
`ResamplingPlan`), so that their bootstrap replicates share the patient draws. The per-group utility is any
per-group metric of the group table ("auc", "tpr", "accuracy", ...) or "balanced_accuracy", (tpr + tnr) / 2. The
worst (best) group's utility is the minimum (maximum) over the attribute's levels within each replicate, so
the worst group may differ between the runs (the usual worst-group definition); a change counts only when its
95% CI excludes 0. Terms as in Zietlow et al. (CVPR 2022) and Mittelstadt et al. (2023) on levelling down.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import BenchError
from fairness.report import ERR_NOT_PAIRED, FairnessReport, Figure, paired_difference
from fairness.resampling import bootstrap_p_value, percentile_interval

VERDICTS = {
    "up": "levelled up: the gap shrank and the worst group gained",
    "up_at_a_cost": "levelled up at a cost: the gap shrank, the worst group gained and the best group lost",
    "down": "levelled down: the gap shrank because the best group lost; the worst group did not gain",
    "all_down": "levelled down: the gap shrank but the worst group lost too",
    "even": "the gap shrank; neither the worst nor the best group changed beyond its CI",
    "not_shrunk": "the gap did not shrink (its CI includes 0)",
    "grew": "the gap grew",
}
BALANCED_ACCURACY = "balanced_accuracy"
ERR_UTILITY = "no per-group metric {name!r}; choose one of {known}, or balanced_accuracy"


@dataclass
class MitigationOutcome:
    """The comparison of a mitigated run with its plain run on one gap and one per-group utility."""

    gap: str
    attribute: str
    utility: str
    gap_plain: Figure
    gap_mitigated: Figure
    gap_change: Figure
    worst_plain: Figure
    worst_mitigated: Figure
    worst_change: Figure
    best_change: Figure
    verdict: str

    def describe(self) -> str:
        return VERDICTS[self.verdict]

    def as_dict(self) -> dict:
        figures = ("gap_plain", "gap_mitigated", "gap_change", "worst_plain", "worst_mitigated", "worst_change",
                   "best_change")
        return {"gap": self.gap, "attribute": self.attribute, "utility": self.utility, "verdict": self.verdict,
                "meaning": self.describe(), **{name: getattr(self, name).as_dict() for name in figures}}


def group_utility(report: FairnessReport, attribute: str, utility: str) -> tuple[np.ndarray, list | None]:
    """Per level of `attribute`: the utility's point values [L] and replicates ([L, B], or None without them)."""
    rows = [row for row in report.groups if row.attribute == attribute]
    if not rows:
        known = sorted({row.attribute for row in report.groups} - {"overall"})
        raise BenchError(f"no groups of attribute {attribute!r} in this report; attributes: {', '.join(known)}")
    names = ("tpr", "tnr") if utility == BALANCED_ACCURACY else (utility,)
    if any(name not in rows[0].metrics for name in names):
        raise BenchError(ERR_UTILITY.format(name=utility, known=", ".join(rows[0].metrics)))
    values = np.array([[row.metrics[name].value for name in names] for row in rows]).mean(axis=1)
    replicates = [[row.metrics[name].replicates for name in names] for row in rows]
    if any(r is None for per in replicates for r in per):
        return values, None
    return values, [np.mean(per, axis=0) for per in replicates]


def _extreme(report: FairnessReport, attribute: str, utility: str, reduce, confidence: float) -> Figure:
    values, replicates = group_utility(report, attribute, utility)
    finite = values[np.isfinite(values)]
    value = float(reduce(finite)) if finite.size else float("nan")
    if replicates is None:
        return Figure(value=value, ci=(float("nan"), float("nan")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate without any finite group value: NaN
        per_replicate = reduce(np.stack(replicates), axis=0)
    return Figure(value=value, ci=percentile_interval(per_replicate, confidence=confidence), replicates=per_replicate)


def _change(after: Figure, before: Figure, confidence: float) -> Figure:
    if after.replicates is None or before.replicates is None:
        return Figure(value=after.value - before.value, ci=(float("nan"), float("nan")))
    difference = after.replicates - before.replicates
    return Figure(value=after.value - before.value, ci=percentile_interval(difference, confidence=confidence),
                  p_value=bootstrap_p_value(difference), replicates=difference)


def verdict(gap_change: Figure, worst_change: Figure, best_change: Figure) -> str:
    """The key of VERDICTS that the three paired changes (with their CIs) support."""
    def below(figure: Figure) -> bool:
        return bool(np.isfinite(figure.ci[1]) and figure.ci[1] < 0)

    def above(figure: Figure) -> bool:
        return bool(np.isfinite(figure.ci[0]) and figure.ci[0] > 0)

    if above(gap_change):
        return "grew"
    if not below(gap_change):
        return "not_shrunk"
    if above(worst_change):
        return "up_at_a_cost" if below(best_change) else "up"
    if below(worst_change):
        return "all_down"
    return "down" if below(best_change) else "even"


def compare_mitigation(plain: FairnessReport, mitigated: FairnessReport, *, gap: str, attribute: str,
                       utility: str, confidence: float = 0.95) -> MitigationOutcome:
    """Compare a mitigated run with its plain run (see the module docstring); `gap` is a figure name."""
    if plain.resampling_key != mitigated.resampling_key:
        raise BenchError(ERR_NOT_PAIRED)
    for report in (plain, mitigated):
        if gap not in report.figures:
            raise BenchError(f"no figure {gap!r} in the report; is {attribute!r} among its group attributes?")
    worst = [_extreme(report, attribute, utility, np.nanmin, confidence) for report in (plain, mitigated)]
    best = [_extreme(report, attribute, utility, np.nanmax, confidence) for report in (plain, mitigated)]
    gap_change = paired_difference(mitigated, plain, gap, confidence=confidence)
    gap_change.replicates = None
    worst_change, best_change = _change(worst[1], worst[0], confidence), _change(best[1], best[0], confidence)
    return MitigationOutcome(
        gap=gap, attribute=attribute, utility=utility, gap_plain=plain.figures[gap], gap_mitigated=mitigated.figures[gap],
        gap_change=gap_change, worst_plain=worst[0], worst_mitigated=worst[1], worst_change=worst_change,
        best_change=best_change, verdict=verdict(gap_change, worst_change, best_change),
    )
