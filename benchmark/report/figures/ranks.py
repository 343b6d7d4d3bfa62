"""Figure 6, rank uncertainty: each ranked run's 95% rank interval (bar) and rank (point), and P(rank = 1), both
from the leaderboard's bootstrap replicates (every replicate ranks the runs again)."""

from __future__ import annotations

import numpy as np

from benchmark.report.style import OKABE_ITO, new_figure

MAX_ROWS = 40


def needs(data, options) -> str | None:
    if not any(run.rank_interval for run in data.ranked):
        return "the leaderboard has no rank intervals (evaluated without bootstrap replicates, or no run is ranked)"
    return None


def draw(data, options):
    from matplotlib.ticker import MaxNLocator

    runs = [run for run in data.ranked if run.rank_interval][:MAX_ROWS]
    figure = new_figure(7.0, 0.22 * len(runs) + 1.3)
    left, right = figure.subplots(1, 2, sharey=True, width_ratios=(2, 1))
    rows = np.arange(len(runs))
    lows, highs = [run.rank_interval[0] for run in runs], [run.rank_interval[1] for run in runs]
    left.hlines(rows, lows, highs, color=OKABE_ITO[0], linewidth=3.0, gid="rank-intervals")
    points, = left.plot([run.rank for run in runs], rows, linestyle="none", marker="o", color="black", ms=4)
    points.set_gid("ranks")
    right.barh(rows, [run.p_first or 0.0 for run in runs], color=OKABE_ITO[1], height=0.6, edgecolor="black",
                      linewidth=0.5)
    left.set_yticks(range(len(runs)), [run.label for run in runs])
    left.set_ylim(len(runs) - 0.5, -0.5)
    left.set_xlim(0.5, max(highs) + 0.5)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("rank (1 = best): point, and 95% interval over bootstrap replicates")
    right.set_xlim(0, 1)
    right.set_xlabel("P(rank = 1) (share of replicates)")
    return figure


def caption(data, options) -> str:
    shown = len([run for run in data.ranked if run.rank_interval])
    more = f" The first {MAX_ROWS} of {shown} ranked runs are shown." if shown > MAX_ROWS else ""
    return (f"Left: each ranked run's rank (point) and 95% rank interval (bar); right: the share of bootstrap "
            f"replicates in which it comes first, ranked by {data.rank_by} each time. Runs below the chance gate "
            f"are not ranked.{more}")
