"""Figure 7, seeds: for every configuration run with several training seeds (the leaderboard's repeat groups),
each seed's value (hollow) and the mean +- SD over the seeds (filled, with bars), per figure."""

from __future__ import annotations

import math

from benchmark.report.figures import common
from benchmark.report.style import new_figure
from benchmark.report.tables import mean_sd, seed_groups

FIGURES = ("utility", "worst_group_utility", "f1_gap_sex", "f1_gap_age")


def needs(data, options) -> str | None:
    return None if seed_groups(data) else "no configuration was run with several seeds"


def shown(data) -> list[str]:
    names = [data.rank_by] + [n for n in FIGURES if n != data.rank_by]
    return [n for n in names if any(run.figure(n).defined for run in data.runs)]


def draw(data, options):
    groups = seed_groups(data)
    names = shown(data)
    palette = common.palette_of(data)
    figure = new_figure(2.0 * len(names) + 2.0, 0.28 * len(groups) + 1.3)
    axes = figure.subplots(1, len(names), squeeze=False, sharey=True)[0]
    for ax, name in zip(axes, names):
        _panel(ax, name, groups, palette)
        if common.is_signed(name):
            common.reference_line(ax, 0.0, gid=f"zero-{name}", style="--")
        ax.set_xlabel(common.figure_label(data, name), fontsize=7.5)
    axes[0].set_yticks(range(len(groups)), [label for label, _ in groups])
    axes[0].set_ylim(len(groups) - 0.5, -0.5)
    return figure


def _panel(ax, name: str, groups, palette) -> None:
    """Per look (encoder, method): every seed's value hollow, and the configurations' mean +- SD."""
    by_look: dict = {}
    for row, (label, runs) in enumerate(groups):
        by_look.setdefault((runs[0].family, runs[0].method), []).append((row, runs))
    for (family, method), members in by_look.items():
        look = palette.look(family, method)
        seeds = [(run.figure(name).value, row) for row, runs in members for run in runs]
        ax.plot([v for v, _ in seeds], [r for _, r in seeds], linestyle="none", marker=look.marker, mfc="white",
                mec=look.colour, ms=4, alpha=0.9)
        summaries = [(row, *mean_sd([run.figure(name).value for run in runs])[:2]) for row, runs in members]
        summaries = [(row, mean, sd if math.isfinite(sd) else 0.0) for row, mean, sd in summaries if math.isfinite(mean)]
        if summaries:
            common.errorbar(ax, [m for _, m, _ in summaries], [r for r, _, _ in summaries],
                            xerr=[[sd for *_, sd in summaries]] * 2, look=look, size=5,
                            gid=f"seeds-{name}-{common.slug(family)}-{common.slug(method)}")


def caption(data, options) -> str:
    return ("Configurations run with several training seeds: every seed's value (hollow) and the mean ± SD over "
            "the seeds (filled, ddof 1). The SD is the spread a new seed would show; the bootstrap CIs of the other "
            "figures are the spread over test patients.")
