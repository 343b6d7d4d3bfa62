"""Figure 4, method progression per encoder (zero-shot -> linear -> MLP -> LoRA -> full, then any other method):
accuracy and each gap, one line per encoder. The seed study's claim ("fine-tuning raises accuracy, the gaps
persist") made visible: accuracy should climb from left to right while the gaps stay away from 0.
A point is one run with its 95% bootstrap CI, or, for a configuration run with several seeds, the mean over the
seeds with +- SD bars (figure 7 shows them)."""

from __future__ import annotations

import math

import numpy as np

from benchmark.report.data import ordered_methods
from benchmark.report.figures import common
from benchmark.report.style import new_figure
from benchmark.report.tables import mean_sd

FIGURES = ("accuracy", "f1_gap_sex", "f1_gap_age", "eqodds_sex", "eqodds_age", "ece_gap_sex", "ece_gap_age")
COLUMNS = 4


def shown(data) -> list[str]:
    return [name for name in FIGURES if any(run.figure(name).defined for run in data.runs)]


def needs(data, options) -> str | None:
    return None if shown(data) else "the runs have neither accuracy nor the seed study's gaps"


def point(runs, name: str):
    """(value, [below, above]) of one configuration: the run's CI, or mean +- SD over its seeds."""
    values = [run.figure(name) for run in runs]
    if len(runs) == 1:
        return values[0].value, common.bars(values)[:, 0]
    mean, sd, _ = mean_sd([v.value for v in values])
    spread = sd if math.isfinite(sd) else 0.0
    return mean, np.array([spread, spread])


def draw(data, options):
    names = shown(data)
    methods = ordered_methods(data.runs)
    palette = common.palette_of(data)
    columns = min(COLUMNS, len(names))
    rows = math.ceil(len(names) / columns)
    figure = new_figure(2.1 * columns + 1.4, 2.0 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False)
    width = 0.5 / max(1, len(palette.encoders))
    for index, name in enumerate(names):
        ax = axes[index // columns][index % columns]
        for e, encoder in enumerate(palette.encoders):
            _encoder_line(ax, data, name, encoder, methods, palette, offset=(e - (len(palette.encoders) - 1) / 2) * width)
        if common.is_signed(name):
            common.reference_line(ax, 0.0, vertical=False, gid=f"zero-{name}", style="--")
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
        ax.set_title(common.figure_label(data, name), fontsize=8)
    for index in range(len(names), rows * columns):
        axes[index // columns][index % columns].set_axis_off()
    encoders, _ = common.legend_handles(palette, palette.encoders, [])
    figure.legend(handles=encoders, title="encoder", loc="outside right upper")
    return figure


def _encoder_line(ax, data, name, encoder, methods, palette, offset: float) -> None:
    xs, ys, errs = [], [], []
    for m, method in enumerate(methods):
        runs = [run for run in data.runs if run.family == encoder and run.method == method]
        if not runs:
            continue
        value, err = point(runs, name)
        if math.isfinite(value):
            xs.append(m + offset)
            ys.append(value)
            errs.append(err)
    if not xs:
        return
    look = palette.look(encoder, methods[0])
    container = ax.errorbar(xs, ys, yerr=np.array(errs).T, color=look.colour, linestyle=look.line, marker="o",
                            ms=3.5, elinewidth=0.8, capsize=1.5, linewidth=1.1)
    container.lines[0].set_gid(f"progression-{name}-{common.slug(encoder)}")


def caption(data, options) -> str:
    return ("Each panel one figure against the adaptation method, in the order zero-shot -> linear probes -> MLP -> "
            "LoRA -> full fine-tuning (other methods after); one line per encoder (colour and line style). Bars: "
            "95% bootstrap CI of a run, or ± SD over seeds where a configuration has several. Dashed: 0 (no gap).")
