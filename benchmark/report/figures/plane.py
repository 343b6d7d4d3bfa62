"""Figure 1, the utility-fairness plane: overall utility (x) against worst-group utility or a chosen gap (y),
one point per run with its 95% CI bars, colour and line style by encoder, marker by method; the Pareto front
joins (and rings) the runs no other run beats on both axes (the leaderboard's front on the default plane); dotted lines
mark chance. Hollow points: below the chance gate (not ranked)."""

from __future__ import annotations

import numpy as np

from benchmark.report.figures import common
from benchmark.report.style import GREY, new_figure

WORST = "worst_group_utility"


def needs(data, options) -> str | None:
    if not any(run.figure("utility").defined and run.figure(options.plane_y).defined for run in data.runs):
        return f"no run has both utility and {options.plane_y}"
    return None


def series(data, y_name: str) -> dict:
    """(encoder, method, below chance) -> its runs with both values defined: one drawn series each (the plane
    has one point per such run)."""
    out: dict = {}
    for run in data.runs:
        if run.figure("utility").defined and run.figure(y_name).defined:
            out.setdefault((run.family, run.method, run.below_chance), []).append(run)
    return out


def front(data, y_name: str) -> list:
    """The runs of the Pareto front of (utility, y), best utility last: the leaderboard's `pareto` flags on the
    default plane; otherwise the non-dominated runs in the directions of the figures table."""
    from fairness.registry import sort_key

    points = [(run, run.figure("utility").value, run.figure(y_name).value) for run in data.runs]
    points = [(run, x, y) for run, x, y in points if np.isfinite(x) and np.isfinite(y)]
    if y_name == WORST:
        chosen = [run for run, _, _ in points if run.pareto]
    else:
        keys = np.array([[sort_key("utility", x), sort_key(y_name, y)] for _, x, y in points]).reshape(-1, 2)
        chosen = [run for i, (run, _, _) in enumerate(points)
                  if not np.any(np.all(keys <= keys[i], axis=1) & np.any(keys < keys[i], axis=1))]
    return sorted(chosen, key=lambda run: run.figure("utility").value)


def draw(data, options):
    y_name = options.plane_y
    palette = common.palette_of(data)
    figure = new_figure(6.8, 4.8)
    ax = figure.add_subplot()
    for (family, method, hollow), runs in series(data, y_name).items():
        xs, ys = [r.figure("utility") for r in runs], [r.figure(y_name) for r in runs]
        common.errorbar(ax, [e.value for e in xs], [e.value for e in ys], xerr=common.bars(xs), yerr=common.bars(ys),
                        look=palette.look(family, method), hollow=hollow,
                        gid=f"points-{common.slug(family)}-{common.slug(method)}{'-chance' if hollow else ''}")
    runs = front(data, y_name)
    if runs:
        xs, ys = [r.figure("utility").value for r in runs], [r.figure(y_name).value for r in runs]
        line, = ax.plot(xs, ys, color="black", linewidth=1.1, linestyle="-", marker="o", ms=11, mfc="none",
                        mew=0.9, zorder=2, label="Pareto front")
        line.set_gid("pareto-front")
    _chance_lines(ax, data.chance, y_name)
    if common.is_signed(y_name):
        common.reference_line(ax, 0.0, vertical=False, gid="zero-y", style="--")
    ax.set_xlabel(common.figure_label(data, "utility"))
    ax.set_ylabel(common.figure_label(data, y_name))
    _legends(figure, ax, palette)
    return figure


def _chance_lines(ax, chance: float, y_name: str) -> None:
    """Dotted lines at chance where they fall near the runs; a note where they would squeeze the runs into a
    corner (every run far above chance)."""
    ax.autoscale_view()
    (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
    near_x = chance >= x_low - 0.25 * (x_high - x_low)
    near_y = y_name == WORST and chance >= y_low - 0.25 * (y_high - y_low)
    if near_x:
        common.reference_line(ax, chance, gid="chance-x", label=f"chance ({chance:.2f})")
    if near_y:
        common.reference_line(ax, chance, vertical=False, gid="chance-y")
    if not near_x or (y_name == WORST and not near_y):
        ax.text(0.01, 0.01, f"chance ({chance:.2f}) lies beyond the lower left corner", transform=ax.transAxes,
                fontsize=7, color=GREY, gid="chance-note")


def _legends(figure, ax, palette) -> None:
    encoders, methods = common.legend_handles(palette, palette.encoders, palette.methods)
    others = ax.get_legend_handles_labels()[0]
    figure.legend(handles=encoders + others, title="encoder", loc="outside right upper")
    figure.legend(handles=methods, title="method", loc="outside right lower")


def caption(data, options) -> str:
    front_of = ("the leaderboard's Pareto front of (utility, worst-group utility)" if options.plane_y == WORST else
                f"the Pareto front of (utility, {options.plane_y}) in the figures table's directions")
    return (f"Each run one point with 95% bootstrap CI bars (colour and line style: encoder; marker: method; hollow: "
            f"overall-utility CI includes chance, not ranked). Black line and rings: {front_of}. Dotted: chance "
            f"({data.utility_name} {data.chance:.2f}). {_direction(options.plane_y)}")


def _direction(y_name: str) -> str:
    if y_name == WORST:
        return "Up and right is better."
    return "Right is better; on y, " + ("nearer 0 is better." if common.is_signed(y_name) else "see the figures table.")
