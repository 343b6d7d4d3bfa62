"""The figures table, kept as data: every figure the engine reports, what kind it is and which way is better.

    spec, attribute = figure_spec("auc_gap_sex")   # FigureSpec("auc_gap_{attr}", kind="gap", better="lower"), "sex"
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


@dataclass(frozen=True)
class FigureSpec:
    """One figure (or a family of them, one per attribute, when `name` holds `{attr}`).

    `kind`: "utility" (how well), "gap" (how differently across groups or classes), "calibration".
    `better`: "higher", "lower", or "zero" (a signed difference: the nearer 0, the better).
    `attribute`: the groups it is computed from ("{attr}" for per-attribute figures, "sex_age" for the seed
    study's cell means, "groups" for every reported group, None for the whole test set).
    `permuted`: the attribute its permutation test ("gap = 0") shuffles; None when it is not tested.
    """

    name: str
    kind: str
    better: str
    formula: str
    source: str
    attribute: str | None = None
    permuted: str | None = None

    @property
    def templated(self) -> bool:
        return "{attr}" in self.name


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("accuracy", "utility", "higher",
               "share of test images decided right (arg-max; multi-label: every class right)", "Sun et al. 2025"),
    FigureSpec("macro_f1", "utility", "higher", "mean_c F1_c", "Sun et al. 2025"),
    FigureSpec("macro_auc", "utility", "higher", "mean_c AUC_c", "common"),
    FigureSpec("worst_class_f1", "utility", "higher", "min_c F1_c", "common"),
    FigureSpec("worst_class_auc", "utility", "higher", "min_c AUC_c", "common"),
    FigureSpec("var_f1", "gap", "lower", "variance (ddof = 1) of F1_c over classes", "Sun et al. 2025 (Var_F1)"),
    FigureSpec("ece", "calibration", "lower", "mean_c ECE_c, 10 equal-width bins", "MEDFAIR, FairMedFM"),
    FigureSpec("f1_gap_sex", "gap", "zero",
               "mean(macroF1(M,<60), macroF1(M,>=60)) - mean(macroF1(F,<60), macroF1(F,>=60)), signed",
               "Sun et al. 2025", attribute="sex_age", permuted="sex"),
    FigureSpec("f1_gap_age", "gap", "zero",
               "mean(macroF1(F,>=60), macroF1(M,>=60)) - mean(macroF1(F,<60), macroF1(M,<60)), signed",
               "Sun et al. 2025", attribute="sex_age", permuted="age"),
    FigureSpec("worst_f1_gap", "gap", "lower", "max(abs(f1_gap_sex), abs(f1_gap_age))", "this project",
               attribute="sex_age"),
    FigureSpec("worst_group_auc", "utility", "higher", "min over every reported group of macroAUC(g)",
               "MEDFAIR, FairMedFM", attribute="groups"),
    FigureSpec("eqodds_{attr}", "gap", "lower", "mean_c (range_g TPR_c(g) + range_g FPR_c(g)) / 2",
               "Sun et al. 2025 (EqOdds)", attribute="{attr}", permuted="{attr}"),
    FigureSpec("ece_gap_{attr}", "gap", "lower", "range_g mean_c ECE_c(g)", "Sun et al. 2025 (ECE delta), binned",
               attribute="{attr}", permuted="{attr}"),
    FigureSpec("auc_gap_{attr}", "gap", "lower", "range_g macroAUC(g)", "MEDFAIR, FairMedFM",
               attribute="{attr}", permuted="{attr}"),
    FigureSpec("eod_{attr}", "gap", "lower", "mean_c max(range_g TPR_c(g), range_g FPR_c(g))",
               "fairlearn equalized_odds_difference", attribute="{attr}", permuted="{attr}"),
    FigureSpec("eopp_{attr}", "gap", "lower", "mean_c range_g TPR_c(g)", "fairlearn equal_opportunity_difference",
               attribute="{attr}", permuted="{attr}"),
    FigureSpec("dpd_{attr}", "gap", "lower", "mean_c range_g selection_rate_c(g)",
               "fairlearn demographic_parity_difference", attribute="{attr}", permuted="{attr}"),
    FigureSpec("es_auc_{attr}", "utility", "higher", "mean_c AUC_c / (1 + sum_g abs(AUC_c(g) - AUC_c))",
               "FairCLIP (Luo et al. 2024)", attribute="{attr}"),
    FigureSpec("underdiagnosis_gap_{attr}", "gap", "lower",
               "range_g FPR of No_Finding (healthy called on a sick patient)", "Seyyed-Kalantari et al. 2021",
               attribute="{attr}", permuted="{attr}"),
    FigureSpec("tpr_disparity_{attr}", "gap", "lower", "max_c range_g TPR_c(g) (per class in the by-class table)",
               "CheXclusion", attribute="{attr}", permuted="{attr}"),
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
    """The groups a figure is computed from (an attribute, "groups", or None for the whole test set)."""
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
    """What the JSON says about a figure: kind, which way is better, formula, source."""
    spec, attribute = figure_spec(name)
    return {"kind": spec.kind, "better": spec.better, "attribute": attribute, "formula": spec.formula,
            "source": spec.source, "tested": permuted_attribute(name) is not None}


def markdown_table() -> str:
    """The figures table of docs/FAIRNESS.md (a test keeps the two equal)."""
    lines = ["| figure | kind | better | formula | source |", "|---|---|---|---|---|"]
    for spec in FIGURES:
        name = f"`{spec.name.replace('{attr}', '<attr>')}`"
        lines.append(f"| {name} | {spec.kind} | {spec.better} | {spec.formula} | {spec.source} |")
    return "\n".join(lines)
