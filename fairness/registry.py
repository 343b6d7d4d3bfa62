"""The figures table, kept as data: every figure the engine reports, what kind it is and which way is better.

    spec, attribute = figure_spec("auc_gap_sex")   # FigureSpec("auc_gap_{attr}", kind="gap", better="zero"), "sex"
    sort_key("macro_auc")                          # larger first; gaps: smaller first; signed gaps: |value|

The leaderboard's ranking direction, which figures get a permutation test, the JSON's figure definitions and
the table in docs/FAIRNESS.md all read this table; nothing guesses from a name's prefix. A name with
`{attr}` stands for one figure per group attribute (`sex`, `age`, `sex_age`, or any other column).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("utility", "gap", "calibration")
BETTER = ("higher", "lower", "zero")
FORMS = ("signed", "difference", "absolute", "max_abs")
"""How a gap is formed (`FigureSpec.form`): "signed" a signed difference of means (unbiased); "difference"
signed with two groups, max - min with more; "absolute" a mean or max over classes of absolute differences;
"max_abs" the larger of two absolute signed gaps. Every form but "signed" (and "difference" with two
groups) is never negative and biased upward: its expected value is above 0 even when no group differs, more
so with more groups and fewer images. Its permutation test accounts for this (the permuted values carry the
same bias); its CI does not reach 0."""
BIAS_NOTE = ("{form}: never negative, biased upward (above 0 even with no difference between groups); compare it "
             "with its permutation p-value, not with 0")


@dataclass(frozen=True)
class FigureSpec:
    """One figure (or a family of them, one per attribute, when `name` holds `{attr}`).

    `kind`: "utility" (how well), "gap" (how differently across groups or classes), "calibration".
    `better`: "higher", "lower", or "zero" (a signed difference: the nearer 0, the better).
    `attribute`: the groups it is computed from ("{attr}" for per-attribute figures, "sex_age" for the seed
    study's cell means, "cells" for the finest reported groups (sex x age cells by default), None for the
    whole test set).
    `permuted`: the attribute its permutation test ("gap = 0") shuffles; None when it is not tested.
    `form`: how a gap is formed (`FORMS`), None for other figures.
    `scope`: "run" (computed by `evaluate` from one run) or "table" (needs every run of a leaderboard).
    `units`: "rate" (a share, AUC, F1, ...) or "squared" (a squared error such as the debiased ECE: small
    numbers, shown with more decimals).
    """

    name: str
    kind: str
    better: str
    formula: str
    source: str
    attribute: str | None = None
    permuted: str | None = None
    form: str | None = None
    scope: str = "run"
    units: str = "rate"

    @property
    def templated(self) -> bool:
        return "{attr}" in self.name


_DIFF = "diff over g (signed with two groups: second - first; max - min with more)"
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("accuracy", "utility", "higher",
               "share of test images decided right (arg-max; multi-label: every class right)", "Sun et al. 2025"),
    FigureSpec("balanced_accuracy", "utility", "higher",
               "single-label: mean_c TPR_c; multi-label: mean_c (TPR_c + TNR_c) / 2",
               "scikit-learn balanced_accuracy_score"),
    FigureSpec("macro_f1", "utility", "higher", "mean_c F1_c", "Sun et al. 2025"),
    FigureSpec("macro_auc", "utility", "higher", "mean_c AUC_c", "common"),
    FigureSpec("utility", "utility", "higher",
               "the task's utility: macro_auc (multi-label and binary tasks), balanced_accuracy (single-label)",
               "this project"),
    FigureSpec("worst_group_utility", "utility", "higher",
               "min over the finest reported groups g (sex x age cells by default) of utility(g); the default ranking",
               "MEDFAIR (worst-group AUC), Zhang et al. 2022", attribute="cells"),
    FigureSpec("dto", "utility", "lower",
               "sqrt(sum_g (utility(g) / max_runs utility(g) - 1)^2) over the worst-group cells: distance to the "
               "utopia point of the table's runs", "MEDFAIR (Zong et al. 2023, DTO)", attribute="cells",
               scope="table"),
    FigureSpec("worst_class_f1", "utility", "higher", "min_c F1_c", "common"),
    FigureSpec("worst_class_auc", "utility", "higher", "min_c AUC_c", "common"),
    FigureSpec("var_f1", "gap", "lower", "variance (ddof = 1) of F1_c over classes", "Sun et al. 2025 (Var_F1)"),
    FigureSpec("ece", "calibration", "zero",
               "mean over channels of the debiased squared l2 calibration error, 10 equal-mass bins (channels: each "
               "class; single-label: the top label)", "Kumar et al. 2019 (debiased); Roelofs et al. 2022 (equal mass)",
               units="squared"),
    FigureSpec("ece_binned", "calibration", "lower",
               "mean over channels of sum_b n_b/n abs(mean_b p - mean_b y), 10 equal-width bins (biased upward)",
               "MEDFAIR, FairMedFM"),
    FigureSpec("brier", "calibration", "lower",
               "mean_i (p_ic - y_ic)^2: mean over classes (multi-label), sum over classes (single-label)",
               "Brier 1950"),
    FigureSpec("f1_gap_sex", "gap", "zero",
               "mean(macroF1(M,<60), macroF1(M,>=60)) - mean(macroF1(F,<60), macroF1(F,>=60)), signed",
               "Sun et al. 2025", attribute="sex_age", permuted="sex", form="signed"),
    FigureSpec("f1_gap_age", "gap", "zero",
               "mean(macroF1(F,>=60), macroF1(M,>=60)) - mean(macroF1(F,<60), macroF1(M,<60)), signed",
               "Sun et al. 2025", attribute="sex_age", permuted="age", form="signed"),
    FigureSpec("worst_f1_gap", "gap", "lower", "max(abs(f1_gap_sex), abs(f1_gap_age))", "this project",
               attribute="sex_age", permuted="sex_age", form="max_abs"),
    FigureSpec("worst_group_auc_{attr}", "utility", "higher", "min_g macroAUC(g)", "MEDFAIR, FairMedFM",
               attribute="{attr}"),
    FigureSpec("eqodds_{attr}", "gap", "lower", "mean_c (range_g TPR_c(g) + range_g FPR_c(g)) / 2",
               "Sun et al. 2025 (EqOdds)", attribute="{attr}", permuted="{attr}", form="absolute"),
    FigureSpec("ece_gap_{attr}", "gap", "zero", f"{_DIFF} of ece(g)", "Sun et al. 2025 (ECE delta), debiased",
               attribute="{attr}", permuted="{attr}", form="difference", units="squared"),
    FigureSpec("brier_gap_{attr}", "gap", "zero", f"{_DIFF} of brier(g)", "this project",
               attribute="{attr}", permuted="{attr}", form="difference"),
    FigureSpec("auc_gap_{attr}", "gap", "zero", f"{_DIFF} of macroAUC(g)", "MEDFAIR, FairMedFM",
               attribute="{attr}", permuted="{attr}", form="difference"),
    FigureSpec("eod_{attr}", "gap", "lower", "mean_c max(range_g TPR_c(g), range_g FPR_c(g))",
               "fairlearn equalized_odds_difference", attribute="{attr}", permuted="{attr}", form="absolute"),
    FigureSpec("eopp_{attr}", "gap", "lower", "mean_c range_g TPR_c(g)", "fairlearn equal_opportunity_difference",
               attribute="{attr}", permuted="{attr}", form="absolute"),
    FigureSpec("dpd_{attr}", "gap", "lower", "mean_c range_g selection_rate_c(g)",
               "fairlearn demographic_parity_difference", attribute="{attr}", permuted="{attr}", form="absolute"),
    FigureSpec("es_auc_{attr}", "utility", "higher", "mean_c AUC_c / (1 + sum_g abs(AUC_c(g) - AUC_c))",
               "FairCLIP (Luo et al. 2024)", attribute="{attr}"),
    FigureSpec("underdiagnosis_gap_{attr}", "gap", "zero",
               f"{_DIFF} of the FPR of No_Finding (healthy called on a sick patient)", "Seyyed-Kalantari et al. 2021",
               attribute="{attr}", permuted="{attr}", form="difference"),
    FigureSpec("tpr_disparity_{attr}", "gap", "lower", "max_c range_g TPR_c(g) (per class in the by-class table)",
               "CheXclusion", attribute="{attr}", permuted="{attr}", form="absolute"),
)

_EXACT = {spec.name: spec for spec in FIGURES if not spec.templated}
_TEMPLATES = [(re.compile("^" + re.escape(spec.name).replace(re.escape("{attr}"), "(?P<attr>.+)") + "$"), spec)
              for spec in FIGURES if spec.templated]


class UnknownFigure(KeyError):
    """A name that is in no row of the figures table."""


def figure_spec(name: str) -> tuple[FigureSpec, str | None]:
    """(the table's row for `name`, the attribute it compares or None); UnknownFigure when there is none."""
    if name in _EXACT:
        spec = _EXACT[name]
        return spec, spec.attribute
    for pattern, spec in _TEMPLATES:
        match = pattern.match(name)
        if match:
            return spec, match.group("attr")
    raise UnknownFigure(name)


def is_known(name: str) -> bool:
    try:
        figure_spec(name)
    except UnknownFigure:
        return False
    return True


def is_gap(name: str) -> bool:
    """Whether the figure measures a difference between groups or classes."""
    return figure_spec(name)[0].kind == "gap"


def figure_attribute(name: str) -> str | None:
    """The groups a figure is computed from (an attribute, "cells", or None for the whole test set)."""
    return figure_spec(name)[1]


def permuted_attribute(name: str) -> str | None:
    """The attribute whose values the figure's permutation test shuffles (None: not tested)."""
    spec, attribute = figure_spec(name)
    if spec.permuted == "{attr}":
        return attribute
    return spec.permuted


def sort_key(name: str, value: float) -> float:
    """Smaller sorts first: -value for "higher", value for "lower", |value| for "zero"."""
    better = figure_spec(name)[0].better
    return -value if better == "higher" else abs(value) if better == "zero" else value


def definition(name: str) -> dict:
    """What the JSON says about a figure: kind, which way is better, formula, source, form, scope."""
    spec, attribute = figure_spec(name)
    return {"kind": spec.kind, "better": spec.better, "attribute": attribute, "formula": spec.formula,
            "source": spec.source, "tested": permuted_attribute(name) is not None, "form": spec.form,
            "scope": spec.scope, "units": spec.units}


def bias_note(name: str, n_groups: int) -> str:
    """The bias note of a gap that is never negative (see `FORMS`); "" for an unbiased signed one."""
    form = figure_spec(name)[0].form
    if form in (None, "signed") or (form == "difference" and n_groups == 2):
        return ""
    what = {"difference": f"max - min over {n_groups} groups", "absolute": "absolute differences",
            "max_abs": "the larger of two absolute gaps"}[form]
    return BIAS_NOTE.format(form=what)


def markdown_table() -> str:
    """The figures table of docs/FAIRNESS.md (a test keeps the two equal)."""
    lines = ["| figure | kind | better | formula | test shuffles | source |", "|---|---|---|---|---|---|"]
    for spec in FIGURES:
        name = f"`{spec.name.replace('{attr}', '<attr>')}`"
        tested = (spec.permuted or "").replace("{attr}", "<attr>") or "—"
        lines.append(f"| {name} | {spec.kind} | {spec.better} | {spec.formula} | {tested} | {spec.source} |")
    return "\n".join(lines)
