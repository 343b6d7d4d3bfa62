"""Figure 2, per-group forest plots: for each run (the best-placed `max_runs`), its utility in every group
(sex, age group, sex x age cell, and any other attribute) with 95% CIs; the dashed line is the run's overall
utility, the dotted line chance. The values are the leaderboard JSON's `groups.<attribute>.<level>.metrics.utility`."""

from __future__ import annotations

import math

from benchmark.report.figures import common
from benchmark.report.style import new_figure, series_look

COLUMNS = 3


def needs(data, options) -> str | None:
    if not any(attr != "overall" for run in data.runs for attr in run.groups):
        return "the runs have no groups (no sex, age or other group column in the predictions)"
    return None


def rows_of(run) -> list[tuple[str, str, object]]:
    """(attribute, level, utility Estimate) of every group of a run, overall left out, in the JSON's order."""
    return [(attribute, level, row["metrics"].get("utility"))
            for attribute, levels in run.groups.items() if attribute != "overall"
            for level, row in levels.items() if row["metrics"].get("utility") is not None]


def draw(data, options):
    runs, _ = common.shown_runs(data, options.max_runs)
    n_rows = math.ceil(len(runs) / COLUMNS)
    groups = max(len(rows_of(run)) for run in runs)
    figure = new_figure(2.6 * min(COLUMNS, len(runs)) + 0.6, n_rows * (0.2 * groups + 0.9) + 0.4)
    axes = figure.subplots(n_rows, min(COLUMNS, len(runs)), squeeze=False, sharex=True)
    attributes = data.attributes()
    for index, run in enumerate(runs):
        _panel(axes[index // COLUMNS][index % COLUMNS], run, attributes, data)
    columns = axes.shape[1]
    for index in range(len(runs), n_rows * columns):
        axes[index // columns][index % columns].set_axis_off()
    for index in range(len(runs)):
        if index + columns >= len(runs):  # nothing below: this panel carries the x axis
            ax = axes[index // columns][index % columns]
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(f"utility: {data.utility_name} ({common.UNIT['rate']})")
    return figure


def _panel(ax, run, attributes, data) -> None:
    rows = rows_of(run)
    for attribute in dict.fromkeys(a for a, _, _ in rows):
        chosen = [(position, estimate) for position, (a, _, estimate) in enumerate(rows) if a == attribute]
        chosen = [(position, e) for position, e in chosen if e.defined]
        if not chosen:
            continue
        look = series_look(attributes.index(attribute) if attribute in attributes else 0)
        estimates = [e for _, e in chosen]
        common.errorbar(ax, [e.value for e in estimates], [position for position, _ in chosen],
                        xerr=common.bars(estimates), look=look, size=4.5,
                        gid=f"forest-{common.slug(run.name)}-{common.slug(attribute)}")
    ax.set_yticks(range(len(rows)), [f"{attribute.replace('_', '×')}: {level}" for attribute, level, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    common.reference_line(ax, run.figure("utility").value, gid=f"overall-{common.slug(run.name)}", style="--",
                          colour="black")
    common.reference_line(ax, data.chance, gid=f"chance-{common.slug(run.name)}")
    rank = f"#{run.rank} " if run.rank is not None else "(chance) "
    ax.set_title(rank + run.label, loc="left", fontsize=8)


def caption(data, options) -> str:
    _, note = common.shown_runs(data, options.max_runs)
    return (f"Each panel one run: its {data.utility_name} in every group with 95% bootstrap CI (marker and colour: "
            f"attribute); dashed line: the run's overall value; dotted: chance ({data.chance:.2f}).{note}")
