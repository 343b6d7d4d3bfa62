"""The leaderboard as data files: JSON (everything) and tidy CSV (one row per run and figure)."""

from __future__ import annotations

import csv
import io

import numpy as np

from benchmark.leaderboard.board import Leaderboard
from benchmark.leaderboard.ranking import chance_level
from benchmark.leaderboard.repeats import SUMMARISED
from fairness.report import clean

CSV_COLUMNS = ("block", "position", "rank", "name", "method", "encoder", "seed", "n_test", "below_chance", "pareto",
               "p_first", "rank_low", "rank_high", "figure", "class", "value", "ci_low", "ci_high", "p", "p_adj",
               "p_at_bound", "mde", "flag", "thresholds", "notes", "random_init")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""


def _groups(report) -> dict:
    groups: dict = {}
    for row in report.as_dict()["groups"]:
        groups.setdefault(row["attribute"], {})[row["level"]] = {
            "count": row["count"], "patients": row["patients"], "positives": row["positives"],
            "prevalence": row["prevalence"], "flag": row["flag"] or None,
            "metrics": {name: {k: v for k, v in fig.items() if k in ("value", "ci")}
                        for name, fig in row["metrics"].items()},
        }
    return groups


def run_json(entry, position: int) -> dict:
    report = entry.report
    figures = {name: {k: v for k, v in figure.as_dict().items() if k != "flag"}
               for name, figure in report.figures.items()}
    return {
        "name": entry.run.name, "method": entry.run.method, "encoder": entry.run.encoder, "seed": entry.run.seed,
        "dataset": entry.run.record.dataset, "random_init": bool(entry.run.record.random_init),
        "test_dataset": entry.run.record.test_dataset or entry.run.record.dataset,
        "ensemble": [member["weights_digest"] for member in entry.run.record.ensemble] or None,
        "n_test": report.n_test, "n_patients": report.n_patients, "position": position, "rank": entry.rank,
        "below_chance": entry.chance, "chance_level": chance_level(report), "pareto": entry.pareto,
        "p_first": entry.p_first, "rank_interval": list(entry.rank_interval) if entry.rank_interval else None,
        "figures": figures, "groups": _groups(report),
        "flags": {name: fig.flag for name, fig in report.figures.items() if fig.flag},
        "thresholds": report.thresholds.as_dict(), "notes": entry.notes,
    }


def board_json(board: Leaderboard) -> dict:
    """One block: {"block", "ranking", "runs", "repeats", "notes"}."""
    repeats = [{"configuration": group.label, "key": group.key, "runs": [e.run.name for e in group.members],
                "seeds": group.seeds,
                "figures": {name: group.summary(name) for name in (board.rank_by, *SUMMARISED)
                            if group.summary(name) is not None}}
               for group in board.repeats]
    ranking = {"rank_by": board.rank_by, "tie_break": "utility", "family_size": board.family_size, **board.options}
    return {"block": board.block, "ranking": ranking,
            "runs": [run_json(entry, position) for position, entry in enumerate(board.entries, start=1)],
            "repeats": _finite(repeats), "notes": board.notes}


def definitions(boards) -> dict:
    from fairness.registry import definition

    names = sorted({name for board in boards for e in board.entries for name in e.report.figures})
    return {name: definition(name) for name in names}


def to_json(boards, across=None) -> dict:
    """One block: its `board_json` plus the figure definitions; several: {"blocks", "across", "figures"}."""
    if len(boards) == 1 and across is None:
        return {**board_json(boards[0]), "figures": definitions(boards)}
    return {"blocks": [board_json(board) for board in boards], "across": across_json(across),
            "figures": definitions(boards)}


def across_json(across) -> dict | None:
    if across is None:
        return None
    return _finite({
        "blocks": across.blocks, "configurations": across.configurations,
        "ranks": across.ranks.tolist(), "mean_rank": dict(zip(across.configurations, across.mean_rank.tolist())),
        "friedman": {"statistic": across.statistic, "p": across.p_value},
        "nemenyi": {"alpha": across.alpha, "critical_difference": across.critical_difference,
                    "p": across.pairwise},
        "left_out": across.left_out, "note": across.note or None,
    })


def comparison_json(comparison) -> dict:
    return _finite({"a": comparison.a, "b": comparison.b, "n_boot": comparison.n_boot,
                    "differences": {row.figure: {"a": row.a, "b": row.b, "difference": row.difference,
                                                 "ci": list(row.ci), "p": row.p_value, "p_adj": row.p_adj}
                                    for row in comparison.differences}})


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float):
        return clean(value)
    return value


def text(value) -> str:
    """A text cell safe to open in a spreadsheet: one starting like a formula gets a leading `'` (OWASP's advice
    against CSV injection), so `=HYPERLINK(...)` in a class or run name stays text. Never used for numbers."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def number(x) -> str:
    """A number cell (repr of the float, so it reads back exactly); empty when undefined."""
    return "" if x is None or not np.isfinite(x) else repr(float(x))


def thresholds_cell(report) -> str:
    rule = report.thresholds.rule
    return "fixed 0.5 (no val split)" if rule == "fixed (no val split)" else rule


def tidy_csv(boards, *, by_class: bool = False) -> str:
    """One row per run and figure (and per class with `by_class`), numbers in their own columns (`CSV_COLUMNS`),
    so that a spreadsheet, pandas or R reads them as numbers; empty cells where a value is undefined. Text
    cells pass through `text` (formula injection); `thresholds` and `notes` repeat the run's threshold rule
    and notes on each of its rows."""

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for board in boards:
        for position, entry in enumerate(board.entries, start=1):
            low, high = entry.rank_interval or (None, None)
            run = [text(board.block), position, "" if entry.rank is None else entry.rank, text(entry.run.name),
                   text(entry.run.method), text(entry.run.encoder), "" if entry.run.seed is None else entry.run.seed,
                   entry.report.n_test, entry.chance, entry.pareto, number(entry.p_first), low or "", high or ""]
            about = [text(thresholds_cell(entry.report)), text(" | ".join(entry.notes)), bool(entry.run.record.random_init)]
            items = [(name, "", figure) for name, figure in entry.report.figures.items()]
            if by_class:
                items += [(name, cls, figure) for name, per in entry.report.by_class.items()
                          for cls, figure in per.items()]
            for name, cls, figure in items:
                writer.writerow(run + [text(name), text(cls), number(figure.value), number(figure.ci[0]),
                                       number(figure.ci[1]), number(figure.p_value), number(figure.p_adj),
                                       figure.p_at_bound if figure.p_value is not None else "", number(figure.mde),
                                       text(figure.flag)] + about)
    return buffer.getvalue()
