"""The leaderboard's tables as (title, header, rows) of text cells, and the legend under the main table."""

from __future__ import annotations

import numpy as np

from benchmark.leaderboard import cells
from benchmark.leaderboard.board import Leaderboard, columns_for
from benchmark.leaderboard.repeats import SUMMARISED
from fairness.registry import figure_spec, is_known

TABLE_FIGURES = ("utility", "f1_gap_sex", "f1_gap_age", "ece_gap_sex")
"""The terminal table shows the ranking figure and these (it must fit); md, csv and json show more."""


def main_table(board: Leaderboard, *, alpha: float, compact: bool) -> tuple[list, list]:
    """Header and rows of the main table; `compact` (the terminal) has fewer columns, CIs on a 2nd line."""
    figures = columns_for(board.entries, board.rank_by)
    if compact:
        figures = [board.rank_by] + [n for n in TABLE_FIGURES if n != board.rank_by and n in figures]
        header = ["#", "run", "n test", "P(1st)", "rank 95%", "front"] + figures
    else:
        header = ["rank", "P(1st)", "rank 95%", "Pareto", "name", "method", "encoder", "seed", "n_test"] + figures
    body, shifted = [], cells.any_shifted(entry.run for entry in board.entries)
    if shifted and not compact:  # in- and out-of-distribution runs: which dataset each was fitted and tested on
        header.insert(header.index("seed"), "datasets")
    for entry in board.entries:
        ranks = [cells.first_cell(entry), cells.interval_cell(entry), cells.pareto_cell(entry)]
        if compact:
            row = [cells.rank_cell(entry), cells.short_label(entry.run, shifted=shifted), str(entry.report.n_test)] + ranks
        else:
            seed = "" if entry.run.seed is None else str(entry.run.seed)
            about = [entry.run.name, entry.run.method, cells.encoder_label(entry.run), seed, str(entry.report.n_test)]
            if shifted:
                about.insert(3, cells.dataset_shift(entry.run.record, shifted=True).strip())
            row = [cells.rank_cell(entry)] + ranks + about
        row += [cells.format_figure(entry.report.figures.get(n), alpha=alpha, compact=compact, name=n) for n in figures]
        body.append(row)
    return header, body


def class_table(board: Leaderboard) -> tuple[list, list]:
    """Per-disease breakdown: F1, AUC and the TPR gap of each attribute (CheXclusion), per run and class."""
    names = sorted({name for e in board.entries for name in e.report.by_class})
    shown = ["f1", "auc"] + [n for n in names if n.startswith("tpr_gap_")]
    body = []
    for entry in board.entries:
        for cls in entry.report.classes:
            body.append([entry.run.name, cls] + [cells.format_figure(entry.report.by_class.get(n, {}).get(cls))
                                                for n in shown])
    return ["name", "class"] + shown, body


def group_tables(board: Leaderboard) -> list[tuple[str, list, list]]:
    """Per test set: every reported group's images, patients, prevalence per class (positives) and flag."""
    seen, tables = set(), []
    for entry in board.entries:
        report = entry.report
        if report.resampling_key in seen:
            continue
        seen.add(report.resampling_key)
        runs = [e.run.name for e in board.entries if e.report.resampling_key == report.resampling_key]
        header = ["attribute", "group", "images", "patients"] + [f"{cls} (n+)" for cls in report.classes] + ["flag"]
        body = [[row.attribute, row.level, str(row.count), str(row.patients)]
                + [_prevalence(row, cls) for cls in report.classes] + [row.flag] for row in report.groups]
        title = f"groups and prevalence of the test set of {_names(runs)}"
        tables.append((title, header, body))
    return tables


def _prevalence(row, cls) -> str:
    share = row.prevalence.get(cls)
    return "n/a" if share is None else f"{share:.3f} ({row.positives[cls]})"


def _names(runs: list) -> str:
    return ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")


def repeats_table(board: Leaderboard) -> tuple[list, list] | None:
    """Configurations run with several seeds: mean ± SD (ddof 1) and the per-seed values."""
    if not board.repeats:
        return None
    figures = [board.rank_by] + [n for n in SUMMARISED if n != board.rank_by]
    header = ["configuration", "runs"] + [f"{n} mean ± SD" for n in figures] + [f"{board.rank_by} per seed"]
    body = []
    for group in board.repeats:
        summaries = [group.summary(n) for n in figures]
        row = [group.label, str(len(group.members))]
        row += [cells.mean_sd(s, cells.digits(n)) for s, n in zip(summaries, figures)]
        row.append(cells.values_cell(summaries[0], cells.digits(board.rank_by)))
        body.append(row)
    return header, body


def legend(board: Leaderboard, alpha: float) -> str:
    """What the marks and columns of the main table mean, and the table's caveats."""
    options = board.options
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}.get(options.get("correction"), "")
    better = figure_spec(board.rank_by)[0].better if is_known(board.rank_by) else "higher"
    lines = [
        f"ranked by {board.rank_by} ({better} is better), ties by utility; 'chance': overall-utility CI includes "
        f"chance (AUC 0.5, balanced accuracy 1/K): listed below, not ranked",
        f"value [95% CI, patient-clustered bootstrap, {options.get('n_boot')} replicates]; P(1st), rank 95%: from "
        f"the same replicates; ◆ Pareto front of (utility, worst_group_utility)",
        (f"* gap != 0 after {correction} correction over {board.family_size} tests (permutation within label "
         f"strata, {options.get('n_perm')} permutations, alpha {alpha}); " if options.get("n_perm") else
         "no permutation tests (--n-perm 0): no gap is marked *; ")
        + "† gap below its minimum detectable effect (80% power); ! flagged: small group or few positives per class "
          "(see --format json)",
    ]
    if not options.get("n_boot"):
        lines[0] = lines[0].replace("overall-utility CI includes chance", "overall utility at or below chance")
        lines[1] = ("no bootstrap (--n-boot 0): no confidence or rank intervals, the chance gate reads the point "
                    "value; ◆ Pareto front of (utility, worst_group_utility)")
    if options.get("reweighted"):
        lines.append("figures computed on the test set reweighted to equal prevalence across groups "
                     "(--reweight-prevalence)")
    return "\n".join(lines + footnotes(board, alpha))


def footnotes(board: Leaderboard, alpha: float) -> list[str]:
    notes = []
    below = sorted({name for e in board.entries for name, f in e.report.figures.items() if f.below_mde})
    if below:
        notes.append(f"† {len(below)} gap figure(s) below their MDE in some run ({', '.join(below[:6])}"
                     f"{', ...' if len(below) > 6 else ''}): the design cannot resolve them; mde per figure in json")
    n_perm, m = board.options.get("n_perm") or 0, board.family_size
    bounded = sum(1 for e in board.entries for f in e.report.figures.values() if f.p_adj is not None and f.p_at_bound)
    if bounded:
        notes.append(f"{bounded} test(s) at the smallest p that {n_perm} permutations give, 1/{n_perm + 1}: no "
                     f"permutation reached the observed gap (the true p may be smaller; p_at_bound in json)")
    if n_perm and m and board.options.get("correction") == "holm" and m / (n_perm + 1) >= alpha:
        needed = int(np.floor(m / alpha))  # the fewest permutations with m / (n + 1) < alpha
        notes.append(f"note: with {m} tests and {n_perm} permutations the smallest Holm-adjusted p is "
                     f"{min(m / (n_perm + 1), 1.0):.3f} >= {alpha}: no gap can be marked *; use --n-perm {needed} or "
                     f"--correction bh")
    return notes
