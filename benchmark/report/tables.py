"""The report's tables as data (`Table`: columns and cells with their numbers), written out by
`benchmark.report.formats` as Markdown, CSV and LaTeX and by `benchmark.report.html` into the page.

- `leaderboard`: the ranked runs (the leaderboard's order, rank, P(rank 1), rank interval, Pareto front);
- `seed-study`: the seed study's layout, encoder x method: accuracy, macro-F1, F1 delta sex / age, Var F1,
  EqOdds sex / age, ECE delta sex / age, each with its 95% CI;
- `per-group`: every run's utility, AUC, F1 and ECE per group; `per-class`: per class F1, AUC and their
  differences over the groups;
- `seeds`: configurations run with several seeds, mean +- SD (ddof 1) over the seeds;
- `tradeoffs` and `encoding` (`benchmark.report.beyond`): mitigation runs beside their plain runs, and the
  demographic-encoding probes beside each encoder, where the report has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from benchmark.report.data import ReportData, method_key

SEED_STUDY_FIGURES = ("accuracy", "macro_f1", "f1_gap_sex", "f1_gap_age", "var_f1", "eqodds_sex", "eqodds_age",
                      "ece_gap_sex", "ece_gap_age")
HEADERS = {"accuracy": "Acc", "macro_f1": "macro-F1", "f1_gap_sex": "F1 Δ sex", "f1_gap_age": "F1 Δ age",
           "var_f1": "Var F1", "eqodds_sex": "EqOdds sex", "eqodds_age": "EqOdds age", "ece_gap_sex": "ECE Δ sex",
           "ece_gap_age": "ECE Δ age", "utility": "utility", "worst_group_utility": "worst-group utility",
           "dto": "DTO", "f1": "F1", "auc": "AUC", "ece": "ECE"}
RANKED_FIGURES = ("utility", "worst_group_utility", "dto", "f1_gap_sex", "f1_gap_age")
GROUP_METRICS = ("utility", "auc", "f1", "ece")
SEED_FIGURES = ("utility", "worst_group_utility", "accuracy", "macro_f1", "f1_gap_sex", "f1_gap_age")


@dataclass(frozen=True)
class Cell:
    text: str
    value: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool = False  # CSV: the value, its low and high bounds in columns of their own
    key: str = ""  # the CSV's column name (a figure's name), default `name`

    @property
    def csv_name(self) -> str:
        return self.key or self.name


@dataclass
class Table:
    name: str  # file stem under tables/ and the page's anchor
    title: str
    caption: str
    columns: list
    rows: list = field(default_factory=list)


def header(name: str) -> str:
    return HEADERS.get(name, name)


def digits(name: str) -> int:
    from benchmark.leaderboard.cells import digits as leaderboard_digits

    return leaderboard_digits(name)


def figure_cell(estimate, name: str, alpha: float = 0.05, *, signed: bool = False) -> Cell:
    """ "0.520 [0.480, 0.560]" (with " *" when significant after the table's correction); "n/a" if undefined.
    `signed`: a change, "+0.012 [-0.010, +0.030]"."""
    if not estimate.defined:
        return Cell("n/a")
    places, sign = digits(name), "+" if signed else ""
    text = f"{estimate.value:{sign}.{places}f}"
    if estimate.has_ci:
        text += f" [{estimate.low:{sign}.{places}f}, {estimate.high:{sign}.{places}f}]"
    if estimate.p_adj is not None and estimate.p_adj < alpha:
        text += " *"
    return Cell(text, estimate.value, estimate.low if estimate.has_ci else None,
                estimate.high if estimate.has_ci else None)


def text(value) -> Cell:
    return Cell("" if value is None else str(value))


def ranked_table(data: ReportData) -> Table:
    figures = [data.rank_by] + [n for n in RANKED_FIGURES if n != data.rank_by]
    columns = [Column("rank"), Column("P(rank 1)"), Column("rank 95%"), Column("Pareto"), Column("run"),
               Column("n test")]
    table = Table("leaderboard", "Ranked leaderboard", _ranked_caption(data),
                  columns + [Column(header(n), True, n) for n in figures])
    for run in data.runs:
        interval = f"{run.rank_interval[0]}–{run.rank_interval[1]}" if run.rank_interval else ""
        first = "" if run.p_first is None else f"{run.p_first:.2f}"
        row = [text("chance" if run.rank is None else run.rank), Cell(first, run.p_first), text(interval),
               text("◆" if run.pareto else ""), text(run.label), text(run.n_test)]
        table.rows.append(row + [figure_cell(run.figure(n), n, data.alpha) for n in figures])
    return table


def _ranked_caption(data: ReportData) -> str:
    from benchmark.report.data import ranking_sentence

    options = data.ranking
    return (f"{ranking_sentence(data.rank_by)} Values: estimate [95% CI, patient-clustered bootstrap, "
            f"{options.get('n_boot')} replicates]; P(rank 1) and the 95% rank interval from the same replicates; ◆ "
            f"on the Pareto front of (utility, worst-group utility); * gap different from 0 after "
            f"{options.get('correction')} correction over {options.get('family_size')} permutation tests "
            f"(alpha {data.alpha}); 'chance': overall-utility CI includes chance, not ranked. "
            f"Utility = {data.utility_name}.")


def seed_study_table(data: ReportData) -> Table:
    figures = [n for n in SEED_STUDY_FIGURES if any(n in run.figures for run in data.runs)]
    table = Table("seed-study", "The seed study's table: encoder x method",
                  "Sun et al. (ISBI 2025) layout. F1 Δ: macro-F1 of M minus F (sex) and of >= 60 minus < 60 (age), "
                  "means over the sex x age cells; Var F1: variance of the per-class F1 (ddof 1); EqOdds: mean "
                  "over classes of (TPR range + FPR range) / 2; ECE Δ: difference of the debiased ECE between "
                  "groups (not the study's unbinned mean |p - y|). 95% CI in brackets; * as in the leaderboard.",
                  [Column("encoder"), Column("method"), Column("seed")] + [Column(header(n), True, n) for n in figures])
    for run in sorted(data.runs, key=lambda r: (r.family, method_key(r.method), r.seed if r.seed is not None else -1)):
        table.rows.append([text(run.family), text(run.method), text(run.seed)]
                          + [figure_cell(run.figure(n), n, data.alpha) for n in figures])
    return table


def group_table(data: ReportData) -> Table:
    metrics = [m for m in GROUP_METRICS if not (m == "auc" and data.kind != "single")]  # multi-label: utility = AUC
    table = Table("per-group", "Per group", f"Every run's figures per group, 95% CI. utility = {data.utility_name}; "
                  "ECE: debiased squared calibration error, 10 equal-mass bins.",
                  [Column("run"), Column("attribute"), Column("group"), Column("images")]
                  + [Column(f"utility ({data.utility_name})" if m == "utility" else header(m), True, m)
                     for m in metrics])
    for run in data.runs:
        for attribute, levels in run.groups.items():
            for level, row in levels.items():
                table.rows.append([text(run.label), text(attribute), text(level), text(row["count"])]
                                  + [_metric_cell(row["metrics"].get(m), m) for m in metrics])
    return table


def _metric_cell(estimate, name: str) -> Cell:
    from benchmark.report.data import Estimate

    return figure_cell(estimate or Estimate(math.nan), name)


def class_names(data: ReportData) -> list[str]:
    """F1, AUC, then their differences and the TPR gap per attribute (sex, age, ...; not the sex x age cells)."""
    present = {n for run in data.runs for n in run.by_class}
    attributes = [a for a in data.attributes() if a != "sex_age"]
    return ["f1", "auc"] + [f"{prefix}_{a}" for prefix in ("f1_diff", "auc_diff", "tpr_gap") for a in attributes
                            if f"{prefix}_{a}" in present]


def class_header(name: str) -> str:
    for prefix, label in (("f1_diff_", "F1 diff "), ("auc_diff_", "AUC diff "), ("tpr_gap_", "TPR gap ")):
        if name.startswith(prefix):
            return label + name[len(prefix):]
    return header(name)


def class_table(data: ReportData) -> Table:
    names = class_names(data)
    table = Table("per-class", "Per class", "Per-class F1 and AUC, and their differences over the groups of each "
                  "attribute (diff: second minus first group, e.g. M - F, >= 60 - < 60; tpr_gap: TPR range), 95% CI.",
                  [Column("run"), Column("class")] + [Column(class_header(n), True, n) for n in names])
    for run in data.runs:
        for cls in data.classes:
            table.rows.append([text(run.label), text(cls)]
                              + [_metric_cell(run.by_class.get(n, {}).get(cls), n) for n in names])
    return table


def seed_groups(data: ReportData) -> list[tuple[str, list]]:
    """(configuration label, its runs) of the leaderboard's repeat groups (two or more seeds)."""
    by_name = {run.name: run for run in data.runs}
    return [(group["configuration"], [by_name[name] for name in group["runs"] if name in by_name])
            for group in data.repeats]


def mean_sd(values) -> tuple[float, float, int]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    mean = sum(finite) / len(finite)
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else math.nan
    return mean, sd, len(finite)


def seeds_table(data: ReportData) -> Table | None:
    groups = seed_groups(data)
    if not groups:
        return None
    figures = [data.rank_by] + [n for n in SEED_FIGURES if n != data.rank_by]
    table = Table("seeds", "Seeds: mean ± SD over repeats", "Configurations run with several training seeds: "
                  "mean ± SD (ddof 1) of each figure over the seeds (the spread a new seed would show; the "
                  "bootstrap CIs of the other tables are the spread over test patients).",
                  [Column("configuration"), Column("seeds")] + [Column(header(n), True, n) for n in figures])
    for label, runs in groups:
        row = [text(label), text(", ".join(str(r.seed) for r in runs))]
        for name in figures:
            mean, sd, _ = mean_sd([r.figure(name).value for r in runs])
            places = digits(name)
            shown = "n/a" if not math.isfinite(mean) else (f"{mean:.{places}f} ± {sd:.{places}f}"
                                                           if math.isfinite(sd) else f"{mean:.{places}f}")
            row.append(Cell(shown, mean, mean - sd if math.isfinite(sd) else None,
                            mean + sd if math.isfinite(sd) else None))
        table.rows.append(row)
    return table


def all_tables(data: ReportData) -> list[Table]:
    from benchmark.report.beyond import encoding_table, tradeoff_table

    tables = [ranked_table(data), seed_study_table(data), group_table(data), class_table(data), seeds_table(data),
              tradeoff_table(data), encoding_table(data)]
    return [table for table in tables if table is not None]
