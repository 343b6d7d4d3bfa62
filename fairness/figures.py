"""The named figures of a run (the names are an interface: the leaderboard, JSON and README use them).

Each figure is computed for every replicate at once from `GroupMetrics` ([B, G, C] arrays). Notation:
F1_c(g) is the one-vs-rest F1 of class c in group g, macroF1(g) its mean over classes, "range over g" is
max_g - min_g over the levels of an attribute. `<attr>` is `sex`, `age`, `sex_age` or another column.

| figure | formula | source |
|---|---|---|
| accuracy | share of test images decided right (arg-max; multi-label: every class right) | Sun et al. 2025 |
| macro_f1 | mean_c F1_c (classes present in labels or decisions) | Sun et al. 2025 |
| macro_auc | mean_c AUC_c | common |
| worst_class_f1, worst_class_auc | min_c F1_c, min_c AUC_c | common |
| var_f1 | variance (ddof=1) of F1_c over classes | Sun et al. 2025 (Var_F1) |
| ece | mean_c ECE_c, 10 equal-width bins | MEDFAIR, FairMedFM |
| f1_gap_sex | mean(macroF1(M,<60), macroF1(M,>=60)) - mean(macroF1(F,<60), macroF1(F,>=60)) (signed) | Sun et al. 2025 |
| f1_gap_age | mean(macroF1(F,>=60), macroF1(M,>=60)) - mean(macroF1(F,<60), macroF1(M,<60)) (signed) | Sun et al. 2025 |
| worst_f1_gap | max(abs(f1_gap_sex), abs(f1_gap_age)) — the default ranking | this project |

With age bands other than < 60 / >= 60, f1_gap_sex averages the cells over every age band and f1_gap_age
(and so worst_f1_gap) is not defined.
| eqodds_<attr> | mean_c (range_g TPR_c(g) + range_g FPR_c(g)) / 2 | Sun et al. 2025 (EqOdds) |
| ece_gap_<attr> | range_g mean_c ECE_c(g) | Sun et al. 2025 (ECE delta), binned |
| auc_gap_<attr> | range_g macroAUC(g) | MEDFAIR, FairMedFM |
| worst_group_auc | min over every reported group of macroAUC(g) | MEDFAIR, FairMedFM |
| eod_<attr> | mean_c max(range_g TPR_c(g), range_g FPR_c(g)) | fairlearn equalized_odds_difference |
| eopp_<attr> | mean_c range_g TPR_c(g) | fairlearn equal_opportunity_difference |
| dpd_<attr> | mean_c range_g selection_rate_c(g) | fairlearn demographic_parity_difference |
| es_auc_<attr> | mean_c AUC_c / (1 + sum_g abs(AUC_c(g) - AUC_c)) | FairCLIP (Luo et al. 2024) |
| underdiagnosis_gap_<attr> | range_g FPR of No_Finding (healthy called on a sick patient) | Seyyed-Kalantari et al. 2021 |
| tpr_disparity_<attr> | max_c range_g TPR_c(g) (per class in the by-class table) | CheXclusion |

With two groups, "range" is the absolute difference, so eqodds/eod/eopp/dpd equal the binary fairlearn
and seed-study definitions per class. Undefined per-class values (a group with no positive of a class)
are left out of the class mean; the seed code counted them as 0.

`seed_exact=True` reproduces two slips of the seed code instead of fixing them: the age groups of
eqodds_age are [0, 60] and [60, 150] (age 60 in both), undefined TPR/FPR count as 0, and the ECE gaps
use the unbinned mean |p - y| (the seed applied it to whatever its model wrote, logits included).
"""

from __future__ import annotations

import numpy as np

from fairness.groups import SEED_AGE_ATTRIBUTE, GroupSet
from fairness.metrics import GroupMetrics, nanmean, nanreduce, nanvar

NO_FINDING = "No_Finding"
GAP_PREFIXES = ("eqodds_", "ece_gap_", "auc_gap_", "eod_", "eopp_", "dpd_", "underdiagnosis_gap_", "tpr_disparity_")
SIGNED_GAPS = ("f1_gap_sex", "f1_gap_age")


def is_gap(name: str) -> bool:
    """Whether the figure measures a difference between groups (tested against 0)."""
    return name in SIGNED_GAPS or name == "worst_f1_gap" or name.startswith(GAP_PREFIXES)


def figure_attribute(name: str) -> str | None:
    """The attribute a figure compares groups of (None for whole-test-set figures)."""
    if name in ("f1_gap_sex", "f1_gap_age", "worst_f1_gap"):
        return "sex_age"
    for prefix in GAP_PREFIXES + ("es_auc_",):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


def permuted_attribute(name: str) -> str | None:
    """The attribute whose values a permutation test shuffles for this figure."""
    if name == "f1_gap_sex":
        return "sex"
    if name == "f1_gap_age":
        return "age"
    if name == "worst_f1_gap":
        return None
    return figure_attribute(name)


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
    overall = index.position[("overall", "all")]
    per = metrics.per_class
    figures: dict[str, np.ndarray] = {}
    by_class: dict[str, np.ndarray] = {}

    figures["accuracy"] = metrics.accuracy[:, overall]
    figures["macro_f1"] = nanmean(per["f1"][:, overall], axis=1)
    figures["macro_auc"] = nanmean(per["auc"][:, overall], axis=1)
    figures["worst_class_f1"] = nanreduce(per["f1"][:, overall], axis=1, reducer=np.min)
    figures["worst_class_auc"] = nanreduce(per["auc"][:, overall], axis=1, reducer=np.min)
    figures["var_f1"] = nanvar(per["f1"][:, overall], axis=1, ddof=1)
    figures["ece"] = nanmean(per["ece"][:, overall], axis=1)
    for name in ("f1", "auc", "tpr", "fpr"):
        by_class[name] = per[name][:, overall]

    macro_f1 = metrics.macro("f1")
    if "sex_age" in index.levels and "age" in index.levels and "sex" in index.levels:
        ages = index.levels["age"]
        cell = {lv: index.position[("sex_age", lv)] for lv in index.levels["sex_age"]}
        male = np.mean([macro_f1[:, cell[f"M,{a}"]] for a in ages], axis=0)
        female = np.mean([macro_f1[:, cell[f"F,{a}"]] for a in ages], axis=0)
        figures["f1_gap_sex"] = male - female
        if len(ages) == 2:
            young, old = ages
            older = (macro_f1[:, cell[f"F,{old}"]] + macro_f1[:, cell[f"M,{old}"]]) / 2
            younger = (macro_f1[:, cell[f"F,{young}"]] + macro_f1[:, cell[f"M,{young}"]]) / 2
            figures["f1_gap_age"] = older - younger
            figures["worst_f1_gap"] = np.maximum(np.abs(figures["f1_gap_sex"]), np.abs(figures["f1_gap_age"]))

    macro_auc = metrics.macro("auc")
    group_aucs = [macro_auc[:, index.of(attr)] for attr in attributes if index.of(attr)]
    if group_aucs:
        figures["worst_group_auc"] = nanreduce(np.concatenate(group_aucs, axis=1), axis=1, reducer=np.min)

    for attr in attributes:
        groups = index.of(attr)
        if len(groups) < 2:
            continue
        tpr, fpr = per["tpr"][:, groups], per["fpr"][:, groups]
        eqodds_groups = groups
        if seed_exact and attr == "age" and SEED_AGE_ATTRIBUTE in index.levels:
            eqodds_groups = index.of(SEED_AGE_ATTRIBUTE)
        if seed_exact:
            seed_tpr = np.nan_to_num(per["tpr"][:, eqodds_groups], nan=0.0)
            seed_fpr = np.nan_to_num(per["fpr"][:, eqodds_groups], nan=0.0)
            figures[f"eqodds_{attr}"] = nanmean((_range(seed_tpr, 1) + _range(seed_fpr, 1)) / 2, axis=1)
            ece = nanmean(per["abs_error"][:, groups], axis=2)
        else:
            figures[f"eqodds_{attr}"] = nanmean((_strict_range(tpr, 1) + _strict_range(fpr, 1)) / 2, axis=1)
            ece = nanmean(per["ece"][:, groups], axis=2)
        figures[f"ece_gap_{attr}"] = _strict_range(ece, 1)
        figures[f"auc_gap_{attr}"] = _strict_range(macro_auc[:, groups], 1)
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
    return figures, by_class


def figure_groups(name: str, index: GroupIndex) -> list[int]:
    """Positions of the groups a figure is computed from (for small-group flags)."""
    attr = figure_attribute(name)
    if attr is None:
        return [index.position[("overall", "all")]]
    return index.of(attr)
