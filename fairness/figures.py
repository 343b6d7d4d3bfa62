"""Compute the named figures of a run from per-group metrics, for every replicate at once.

Each figure is computed from `GroupMetrics` ([B, G, C] arrays). Notation: F1_c(g) is the one-vs-rest F1 of
class c in group g, macroF1(g) its mean over classes. "diff over g" is the signed difference second level -
first level when the attribute has two groups (M - F; >= 60 - < 60), and max_g - min_g when it has more
(then never negative, and biased upward: see the figures table). "range over g" is always max_g - min_g.
What each figure is, its formula, kind, direction and source: the figures table, `fairness.registry`.
Undefined per-class values (a group with no positive of a class) are left out of the class mean; the seed
code counted them as 0.

With age bands other than < 60 / >= 60, f1_gap_sex averages the cells over every age band and f1_gap_age
(and so worst_f1_gap) is not defined.

`seed_exact=True` reproduces two slips of the seed code instead of fixing them: the age groups of
eqodds_age are [0, 60] and [60, 150] (age 60 in both), undefined TPR/FPR count as 0, and `ece` and the ECE
gaps use the unbinned mean |p - y| (the seed applied it to whatever its model wrote, logits included).
"""

from __future__ import annotations

import numpy as np

from benchmark.core.schema import NO_FINDING
from fairness.groups import SEED_AGE_ATTRIBUTE, GroupSet
from fairness.metrics import GroupMetrics, nanmean, nanreduce, nanvar
from fairness.registry import figure_attribute


class GroupIndex:
    """Positions of the reported groups in the group axis (the order of `GroupSet.group_table()`).

    `cells`: the attributes the worst group is taken over — the finest ones reported (sex_age when sex,
    age and sex_age are; every one of several attributes that are not parts of another).
    """

    def __init__(self, groups: GroupSet):
        self.table = groups.group_table()
        self.position = {(attr, level): g for g, (attr, level, _) in enumerate(self.table)}
        self.levels: dict[str, list[str]] = {}
        for attr, level, _ in self.table:
            if attr != "overall":
                self.levels.setdefault(attr, []).append(level)
        self.cells = finest_attributes([a.name for a in groups.attributes if a.name != SEED_AGE_ATTRIBUTE],
                                       groups.base_names)

    def of(self, attr: str) -> list[int]:
        return [self.position[(attr, level)] for level in self.levels.get(attr, [])]

    def cell_positions(self) -> list[int]:
        return [g for attr in self.cells for g in self.of(attr)]


def finest_attributes(attributes, base_names) -> list[str]:
    """The attributes whose base parts are not a strict subset of another attribute's parts."""
    def parts(name: str) -> frozenset:
        return frozenset([name] if name in base_names else name.split("_"))

    return [a for a in attributes if not any(parts(a) < parts(b) for b in attributes)]


def _range(values: np.ndarray, axis: int) -> np.ndarray:
    return nanreduce(values, axis=axis, reducer=np.max) - nanreduce(values, axis=axis, reducer=np.min)


def _strict_range(values: np.ndarray, axis: int) -> np.ndarray:
    """max - min over groups, NaN if any group's value is undefined."""
    return np.max(values, axis=axis) - np.min(values, axis=axis)


def difference(values: np.ndarray) -> np.ndarray:
    """[B] (or [B, C]) "diff over g" of [B, G] (or [B, G, C]) values: second - first with two groups, max - min
    with more."""
    if values.shape[1] == 2:
        return values[:, 1] - values[:, 0]
    return _strict_range(values, 1)


def compute_figures(
    metrics: GroupMetrics, index: GroupIndex, *, classes, attributes, seed_exact: bool = False
) -> tuple[dict, dict]:
    """(figures, by_class): figures name -> [B]; by_class name -> [B, C]."""
    figures, by_class = _overall_figures(metrics, index, seed_exact)
    figures.update(_seed_study_gaps(metrics, index))
    cells = index.cell_positions()
    if cells:
        figures["worst_group_utility"] = nanreduce(metrics.utility()[:, cells], axis=1, reducer=np.min)
    for attr in attributes:
        if len(index.of(attr)) >= 2:
            _attribute_figures(metrics, index, attr, classes, seed_exact, figures, by_class)
    return figures, by_class


def _overall_figures(metrics: GroupMetrics, index: GroupIndex, seed_exact: bool) -> tuple[dict, dict]:
    overall = index.position[("overall", "all")]
    per = metrics.per_class
    brier = per["brier"][:, overall]
    figures = {
        "accuracy": metrics.accuracy[:, overall],
        "balanced_accuracy": metrics.balanced_accuracy[:, overall],
        "macro_f1": nanmean(per["f1"][:, overall], axis=1),
        "macro_auc": nanmean(per["auc"][:, overall], axis=1),
        "utility": metrics.utility()[:, overall],
        "worst_class_f1": nanreduce(per["f1"][:, overall], axis=1, reducer=np.min),
        "worst_class_auc": nanreduce(per["auc"][:, overall], axis=1, reducer=np.min),
        "var_f1": nanvar(per["f1"][:, overall], axis=1, ddof=1),
        "ece": _ece(metrics, seed_exact)[:, overall],
        "ece_binned": metrics.ece_binned[:, overall],
        "brier": brier.sum(axis=1) if metrics.kind == "single" else nanmean(brier, axis=1),
    }
    return figures, {name: per[name][:, overall] for name in ("f1", "auc", "tpr", "fpr")}


def _ece(metrics: GroupMetrics, seed_exact: bool) -> np.ndarray:
    """[B, G] the ECE figure of each group: debiased (default) or the seed's unbinned mean |p - y|."""
    return nanmean(metrics.per_class["abs_error"], axis=2) if seed_exact else metrics.ece


def group_brier(metrics: GroupMetrics) -> np.ndarray:
    """[B, G] Brier score per group: multi-class (sum over classes) for single-label, class mean otherwise."""
    brier = metrics.per_class["brier"]
    return brier.sum(axis=2) if metrics.kind == "single" else nanmean(brier, axis=2)


def _seed_study_gaps(metrics: GroupMetrics, index: GroupIndex) -> dict:
    """The seed study's F1 gaps: means over the sex x age cells (with binary age groups)."""
    if not ("sex_age" in index.levels and "age" in index.levels and "sex" in index.levels):
        return {}
    macro_f1 = metrics.macro("f1")
    ages = index.levels["age"]
    cell = {lv: index.position[("sex_age", lv)] for lv in index.levels["sex_age"]}
    male = np.mean([macro_f1[:, cell[f"M,{a}"]] for a in ages], axis=0)
    female = np.mean([macro_f1[:, cell[f"F,{a}"]] for a in ages], axis=0)
    figures = {"f1_gap_sex": male - female}
    if len(ages) == 2:
        young, old = ages
        older = (macro_f1[:, cell[f"F,{old}"]] + macro_f1[:, cell[f"M,{old}"]]) / 2
        younger = (macro_f1[:, cell[f"F,{young}"]] + macro_f1[:, cell[f"M,{young}"]]) / 2
        figures["f1_gap_age"] = older - younger
        figures["worst_f1_gap"] = np.maximum(np.abs(figures["f1_gap_sex"]), np.abs(figures["f1_gap_age"]))
    return figures


def _attribute_figures(metrics, index, attr, classes, seed_exact, figures, by_class) -> None:
    """The per-attribute figures of `attr` (two or more groups), written into `figures` / `by_class`."""
    overall = index.position[("overall", "all")]
    per = metrics.per_class
    groups = index.of(attr)
    tpr, fpr = per["tpr"][:, groups], per["fpr"][:, groups]
    if seed_exact:
        eqodds_groups = index.of(SEED_AGE_ATTRIBUTE) if attr == "age" and SEED_AGE_ATTRIBUTE in index.levels else groups
        seed_tpr = np.nan_to_num(per["tpr"][:, eqodds_groups], nan=0.0)
        seed_fpr = np.nan_to_num(per["fpr"][:, eqodds_groups], nan=0.0)
        figures[f"eqodds_{attr}"] = nanmean((_range(seed_tpr, 1) + _range(seed_fpr, 1)) / 2, axis=1)
        figures[f"ece_gap_{attr}"] = _strict_range(_ece(metrics, True)[:, groups], 1)
    else:
        figures[f"eqodds_{attr}"] = nanmean((_strict_range(tpr, 1) + _strict_range(fpr, 1)) / 2, axis=1)
        figures[f"ece_gap_{attr}"] = difference(metrics.ece[:, groups])
    macro_auc = metrics.macro("auc")[:, groups]
    figures[f"auc_gap_{attr}"] = difference(macro_auc)
    figures[f"worst_group_auc_{attr}"] = nanreduce(macro_auc, axis=1, reducer=np.min)
    figures[f"brier_gap_{attr}"] = difference(group_brier(metrics)[:, groups])
    tpr_range = _strict_range(tpr, 1)
    figures[f"eod_{attr}"] = nanmean(np.maximum(tpr_range, _strict_range(fpr, 1)), axis=1)
    figures[f"eopp_{attr}"] = nanmean(tpr_range, axis=1)
    figures[f"dpd_{attr}"] = nanmean(_strict_range(per["selection_rate"][:, groups], 1), axis=1)
    auc_all = per["auc"][:, overall]
    spread = np.sum(np.abs(per["auc"][:, groups] - auc_all[:, None, :]), axis=1)
    figures[f"es_auc_{attr}"] = nanmean(auc_all / (1.0 + spread), axis=1)
    figures[f"tpr_disparity_{attr}"] = nanreduce(tpr_range, axis=1, reducer=np.max)
    by_class[f"tpr_gap_{attr}"] = tpr_range
    by_class[f"f1_diff_{attr}"] = difference(per["f1"][:, groups])  # per class: the report's disease x group map
    by_class[f"auc_diff_{attr}"] = difference(per["auc"][:, groups])
    if NO_FINDING in classes:
        c = list(classes).index(NO_FINDING)
        figures[f"underdiagnosis_gap_{attr}"] = difference(fpr[:, :, c])


def figure_groups(name: str, index: GroupIndex) -> list[int]:
    """Positions of the groups a figure is computed from (for small-group flags)."""
    attr = figure_attribute(name)
    if attr is None:
        return [index.position[("overall", "all")]]
    if attr == "cells":
        return index.cell_positions()
    return index.of(attr)
