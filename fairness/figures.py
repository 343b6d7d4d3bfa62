"""Compute the named figures of a run from per-group metrics, for every replicate at once.

Each figure is computed from `GroupMetrics` ([B, G, C] arrays). Notation: F1_c(g) is the one-vs-rest F1 of
class c in group g, macroF1(g) its mean over classes, "range over g" is max_g - min_g over the levels of an
attribute (with two groups: the absolute difference, so eqodds/eod/eopp/dpd equal the binary fairlearn and
seed-study definitions per class). What each figure is, its formula, kind, direction and source: the
figures table, `fairness.registry`. Undefined per-class values (a group with no positive of a class) are
left out of the class mean; the seed code counted them as 0.

With age bands other than < 60 / >= 60, f1_gap_sex averages the cells over every age band and f1_gap_age
(and so worst_f1_gap) is not defined.

`seed_exact=True` reproduces two slips of the seed code instead of fixing them: the age groups of
eqodds_age are [0, 60] and [60, 150] (age 60 in both), undefined TPR/FPR count as 0, and the ECE gaps
use the unbinned mean |p - y| (the seed applied it to whatever its model wrote, logits included).
"""

from __future__ import annotations

import numpy as np

from benchmark.core.schema import NO_FINDING
from fairness.groups import SEED_AGE_ATTRIBUTE, GroupSet
from fairness.metrics import GroupMetrics, nanmean, nanreduce, nanvar
from fairness.registry import figure_attribute

class GroupIndex:
    """Positions of the reported groups in the group axis (the order of `GroupSet.group_table()`)."""

    def __init__(self, groups: GroupSet):
        self.table = groups.group_table()
        self.position = {(attr, level): g for g, (attr, level, _) in enumerate(self.table)}
        self.levels: dict[str, list[str]] = {}
        for attr, level, _ in self.table:
            if attr != "overall":
                self.levels.setdefault(attr, []).append(level)

    def of(self, attr: str) -> list[int]:
        return [self.position[(attr, level)] for level in self.levels.get(attr, [])]


def _range(values: np.ndarray, axis: int) -> np.ndarray:
    return nanreduce(values, axis=axis, reducer=np.max) - nanreduce(values, axis=axis, reducer=np.min)


def _strict_range(values: np.ndarray, axis: int) -> np.ndarray:
    """max - min over groups, NaN if any group's value is undefined."""
    return np.max(values, axis=axis) - np.min(values, axis=axis)


def compute_figures(
    metrics: GroupMetrics, index: GroupIndex, *, classes, attributes, seed_exact: bool = False
) -> tuple[dict, dict]:
    """(figures, by_class): figures name -> [B]; by_class name -> [B, C]."""
    figures, by_class = _overall_figures(metrics, index)
    figures.update(_seed_study_gaps(metrics, index))
    macro_auc = metrics.macro("auc")
    group_aucs = [macro_auc[:, index.of(attr)] for attr in attributes if index.of(attr)]
    if group_aucs:
        figures["worst_group_auc"] = nanreduce(np.concatenate(group_aucs, axis=1), axis=1, reducer=np.min)
    for attr in attributes:
        if len(index.of(attr)) >= 2:
            _attribute_figures(metrics, index, attr, classes, seed_exact, figures, by_class)
    return figures, by_class


def _overall_figures(metrics: GroupMetrics, index: GroupIndex) -> tuple[dict, dict]:
    overall = index.position[("overall", "all")]
    per = metrics.per_class
    figures = {
        "accuracy": metrics.accuracy[:, overall],
        "macro_f1": nanmean(per["f1"][:, overall], axis=1),
        "macro_auc": nanmean(per["auc"][:, overall], axis=1),
        "worst_class_f1": nanreduce(per["f1"][:, overall], axis=1, reducer=np.min),
        "worst_class_auc": nanreduce(per["auc"][:, overall], axis=1, reducer=np.min),
        "var_f1": nanvar(per["f1"][:, overall], axis=1, ddof=1),
        "ece": nanmean(per["ece"][:, overall], axis=1),
    }
    return figures, {name: per[name][:, overall] for name in ("f1", "auc", "tpr", "fpr")}


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
    """The per-attribute gap figures of `attr` (two or more groups), written into `figures` / `by_class`."""
    overall = index.position[("overall", "all")]
    per = metrics.per_class
    groups = index.of(attr)
    tpr, fpr = per["tpr"][:, groups], per["fpr"][:, groups]
    if seed_exact:
        eqodds_groups = index.of(SEED_AGE_ATTRIBUTE) if attr == "age" and SEED_AGE_ATTRIBUTE in index.levels else groups
        seed_tpr = np.nan_to_num(per["tpr"][:, eqodds_groups], nan=0.0)
        seed_fpr = np.nan_to_num(per["fpr"][:, eqodds_groups], nan=0.0)
        figures[f"eqodds_{attr}"] = nanmean((_range(seed_tpr, 1) + _range(seed_fpr, 1)) / 2, axis=1)
        ece = nanmean(per["abs_error"][:, groups], axis=2)
    else:
        figures[f"eqodds_{attr}"] = nanmean((_strict_range(tpr, 1) + _strict_range(fpr, 1)) / 2, axis=1)
        ece = nanmean(per["ece"][:, groups], axis=2)
    figures[f"ece_gap_{attr}"] = _strict_range(ece, 1)
    figures[f"auc_gap_{attr}"] = _strict_range(metrics.macro("auc")[:, groups], 1)
    tpr_range = _strict_range(tpr, 1)
    figures[f"eod_{attr}"] = nanmean(np.maximum(tpr_range, _strict_range(fpr, 1)), axis=1)
    figures[f"eopp_{attr}"] = nanmean(tpr_range, axis=1)
    figures[f"dpd_{attr}"] = nanmean(_strict_range(per["selection_rate"][:, groups], 1), axis=1)
    auc_all = per["auc"][:, overall]
    spread = np.sum(np.abs(per["auc"][:, groups] - auc_all[:, None, :]), axis=1)
    figures[f"es_auc_{attr}"] = nanmean(auc_all / (1.0 + spread), axis=1)
    figures[f"tpr_disparity_{attr}"] = nanreduce(tpr_range, axis=1, reducer=np.max)
    by_class[f"tpr_gap_{attr}"] = tpr_range
    if NO_FINDING in classes:
        c = list(classes).index(NO_FINDING)
        figures[f"underdiagnosis_gap_{attr}"] = _strict_range(fpr[:, :, c], 1)


def figure_groups(name: str, index: GroupIndex) -> list[int]:
    """Positions of the groups a figure is computed from (for small-group flags)."""
    attr = figure_attribute(name)
    if attr is None:
        return [index.position[("overall", "all")]]
    if attr == "groups":
        return [g for g, (group_attr, _, _) in enumerate(index.table) if group_attr != "overall"]
    return index.of(attr)
