"""What `evaluate` returns: figures with CIs and p-values, per-class figures, the group table.

Also the comparisons built on stored replicates: `FairnessReport.difference` / `.ratio` (max - min or
min / max of any per-group metric over an attribute) and `paired_difference` (two runs on one test set).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.core.errors import BenchError
from fairness.resampling import bootstrap_p_value, percentile_interval
from fairness.thresholds import Thresholds

ERR_NO_ATTRIBUTE = "no groups of attribute {attribute!r} in this report; attributes: {known}"
ERR_NO_METRIC = "no per-group metric {metric!r}; per-group metrics: {known}"
ERR_NOT_PAIRED = (
    "paired comparison needs both runs evaluated on the same test images, patients and groups with the same "
    "seed and n_boot; align the runs by image_id and evaluate both with the same options"
)


def clean(x) -> float | None:
    """A JSON number: None for None, NaN or infinity."""
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass
class Figure:
    """One figure: point value, percentile CI, raw and adjusted permutation p-values, a flag if unsound.

    `p_at_bound`: no permutation reached the observed value, so p is 1 / (n_perm + 1), the smallest that
    n_perm permutations can give (the true p may be smaller). `mde`: for a gap, the minimum detectable effect
    at 80% power (two-sided 5%) from the bootstrap SE. `note`: why the figure is biased, where it is.
    """

    value: float
    ci: tuple[float, float]
    p_value: float | None = None
    p_adj: float | None = None
    flag: str = ""
    replicates: np.ndarray | None = field(default=None, repr=False)
    p_at_bound: bool = False
    mde: float | None = None
    note: str = ""

    @property
    def below_mde(self) -> bool:
        """A gap smaller than what the design can detect (|value| < MDE)."""
        return self.mde is not None and np.isfinite(self.value) and abs(self.value) < self.mde

    def as_dict(self) -> dict:
        out = {"value": clean(self.value), "ci": [clean(self.ci[0]), clean(self.ci[1])], "p_adj": clean(self.p_adj)}
        if self.p_value is not None:
            out["p"] = clean(self.p_value)
            out["p_at_bound"] = self.p_at_bound
        if self.mde is not None:
            out["mde"] = clean(self.mde)
            out["below_mde"] = self.below_mde
        if self.flag:
            out["flag"] = self.flag
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class GroupResult:
    """One reported group: its attribute and level, size, positives per class, macro metrics, a flag."""

    attribute: str
    level: str
    count: int
    positives: dict  # class -> positives in the group
    metrics: dict  # metric name -> Figure (macro over classes)
    flag: str = ""
    patients: int = 0

    @property
    def prevalence(self) -> dict:
        """class -> share of the group's images positive for it (None for an empty group)."""
        return {cls: (count / self.count if self.count else None) for cls, count in self.positives.items()}

    def as_dict(self) -> dict:
        return {
            "attribute": self.attribute,
            "level": self.level,
            "count": self.count,
            "patients": self.patients,
            "positives": self.positives,
            "prevalence": self.prevalence,
            "flag": self.flag,
            "metrics": {name: fig.as_dict() for name, fig in self.metrics.items()},
        }


@dataclass
class FairnessReport:
    """What `evaluate` returns: figures, per-class figures, the group table, thresholds and options."""

    figures: dict
    by_class: dict  # name -> {class: Figure}
    groups: list  # GroupResult rows, "overall" first
    thresholds: Thresholds
    classes: tuple
    kind: str
    n_test: int
    n_patients: int
    options: dict
    resampling_key: str = ""

    def _levels(self, metric: str, attribute: str) -> list:
        rows = [row for row in self.groups if row.attribute == attribute]
        if not rows:
            known = sorted({row.attribute for row in self.groups} - {"overall"})
            raise BenchError(ERR_NO_ATTRIBUTE.format(attribute=attribute, known=", ".join(known)))
        if metric not in rows[0].metrics:
            raise BenchError(ERR_NO_METRIC.format(metric=metric, known=", ".join(rows[0].metrics)))
        return [row.metrics[metric] for row in rows]

    def difference(self, metric: str, attribute: str) -> Figure:
        """max - min over the attribute's groups of a per-group (macro) metric, with its bootstrap CI."""
        return self._spread(metric, attribute, lambda v, axis: np.max(v, axis=axis) - np.min(v, axis=axis))

    def ratio(self, metric: str, attribute: str) -> Figure:
        """min / max over the attribute's groups of a per-group (macro) metric, with its bootstrap CI."""
        def min_over_max(values, axis):
            high = np.max(values, axis=axis)
            return np.divide(np.min(values, axis=axis), high, out=np.full(np.shape(high), np.nan), where=high > 0)

        return self._spread(metric, attribute, min_over_max)

    def _spread(self, metric: str, attribute: str, reduce) -> Figure:
        figures = self._levels(metric, attribute)
        value = float(reduce(np.array([fig.value for fig in figures]), 0))
        if any(fig.replicates is None for fig in figures):
            return Figure(value=value, ci=(float("nan"), float("nan")))
        replicates = reduce(np.stack([fig.replicates for fig in figures]), 0)
        return Figure(value=value, ci=percentile_interval(replicates, confidence=self.options["confidence"]),
                      replicates=replicates)

    def as_dict(self) -> dict:
        return {
            "n_test": self.n_test,
            "n_patients": self.n_patients,
            "kind": self.kind,
            "classes": list(self.classes),
            "thresholds": self.thresholds.as_dict(),
            "options": self.options,
            "figures": {name: fig.as_dict() for name, fig in self.figures.items()},
            "by_class": {
                name: {cls: fig.as_dict() for cls, fig in per.items()} for name, per in self.by_class.items()
            },
            "groups": [row.as_dict() for row in self.groups],
        }


def paired_difference(report_a: FairnessReport, report_b: FairnessReport, name: str, *, confidence: float = 0.95):
    """Difference A - B of one figure on the same test set, with a paired-bootstrap CI and p-value.

    Both reports must come from `evaluate` on the same test images (same order, patients and groups) with
    the same `seed` and `n_boot`, so their replicates share the same patient draws.
    """
    if report_a.resampling_key != report_b.resampling_key:
        raise BenchError(ERR_NOT_PAIRED)
    a, b = report_a.figures[name], report_b.figures[name]
    if a.replicates is None or b.replicates is None:
        return Figure(value=a.value - b.value, ci=(float("nan"), float("nan")))
    difference = a.replicates - b.replicates
    return Figure(
        value=a.value - b.value,
        ci=percentile_interval(difference, confidence=confidence),
        p_value=bootstrap_p_value(difference),
    )
