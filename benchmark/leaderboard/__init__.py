"""The leaderboard: read runs (workdir or outside files), evaluate each once, rank, and write it out.

    runs = load_external(["mine=preds.csv"]) + load_task_runs(workdir, "nih14")
    board = build(runs)                       # a Leaderboard: plain data (entries, ranks, intervals, Pareto, repeats)
    board[0].report.figures["worst_group_utility"], board[0].rank_interval, board[0].pareto
    render([board], fmt="md")

Modules: `loading` (runs and their evaluation), `board` (build: evaluate, correct, rank), `ranking` (chance
gate, order, rank uncertainty, Pareto front, DTO), `repeats` (seeds of one configuration), `compare` (paired
differences of two runs), `across` (Friedman / Nemenyi across tasks or datasets), `tables` / `cells`
(text tables), `export` (JSON, CSV), `render`, `tradeoff` (mitigation runs beside their plain runs: `bench
tradeoff` and the report), `probes` (demographic encoding beside each encoder). What every figure means:
docs/FAIRNESS.md.
"""

from benchmark.leaderboard.across import AcrossBlocks, across_blocks
from benchmark.leaderboard.board import (
    DEFAULT_RANK,
    ERR_DEFAULT_RANK,
    ERR_RANK,
    SHOWN_FIGURES,
    Entry,
    Leaderboard,
    build,
)
from benchmark.leaderboard.cells import format_figure
from benchmark.leaderboard.compare import Comparison, compare
from benchmark.leaderboard.export import CSV_COLUMNS, to_json, tidy_csv
from benchmark.leaderboard.loading import (
    ERR_NO_TEST,
    ERR_SPEC,
    RunInput,
    blocks,
    evaluate_run,
    load_external,
    load_task_runs,
    parse_prediction_spec,
)
from benchmark.leaderboard.render import FORMATS, render, render_comparison

__all__ = [
    "AcrossBlocks", "CSV_COLUMNS", "Comparison", "DEFAULT_RANK", "ERR_DEFAULT_RANK", "ERR_NO_TEST", "ERR_RANK",
    "ERR_SPEC", "Entry", "FORMATS", "Leaderboard", "RunInput", "SHOWN_FIGURES", "across_blocks", "blocks", "build",
    "compare", "evaluate_run", "format_figure", "load_external", "load_task_runs", "parse_prediction_spec", "render",
    "render_comparison", "tidy_csv", "to_json",
]
