"""Figure 3, disease x group: for each attribute with two groups (sex, age, ...), one panel of runs (rows, the
best-placed `max_runs`) by classes (columns); each cell the per-class F1 (or AUC) difference between the
attribute's two groups (second minus first: M - F, >= 60 - < 60), written in the cell and coloured (purple:
the first group does better, orange: the second). A cell is marked (* and a box) when its two-sided bootstrap
Wald p-value (z = difference / bootstrap SE, the same replicates as every CI) stays below alpha after Holm
correction over all cells drawn.
The seed study's "fairness across disease categories", per class and group."""

from __future__ import annotations

import numpy as np

from benchmark.report.figures import common
from benchmark.report.style import SEQUENTIAL_DIVERGING, new_figure

STACK_FROM_CLASSES = 6


def attributes(data, metric: str) -> list[str]:
    """The attributes with exactly two groups that have per-class differences of `metric`."""
    out = []
    for attribute in data.attributes():
        levels = {len(run.groups.get(attribute, {})) for run in data.runs}
        if levels == {2} and any(f"{metric}_diff_{attribute}" in run.by_class for run in data.runs):
            out.append(attribute)
    return out


def needs(data, options) -> str | None:
    if not attributes(data, options.heatmap):
        return "no attribute with two groups has per-class differences in these runs"
    return None


def cells(data, options) -> dict:
    """attribute -> (runs, values [R, C], significant [R, C]) with Holm over every tested cell of the figure."""
    from fairness.multitest import adjust_p_values

    runs, _ = common.shown_runs(data, options.max_runs)
    out, tested = {}, []
    for attribute in attributes(data, options.heatmap):
        name = f"{options.heatmap}_diff_{attribute}"
        values = np.full((len(runs), len(data.classes)), np.nan)
        for r, run in enumerate(runs):
            for c, cls in enumerate(data.classes):
                estimate = run.by_class.get(name, {}).get(cls)
                if estimate is not None and estimate.defined:
                    values[r, c] = estimate.value
                    if estimate.p is not None:
                        tested.append((attribute, r, c, estimate.p))
        out[attribute] = (runs, values, np.zeros(values.shape, dtype=bool))
    if tested:
        adjusted = adjust_p_values([p for *_, p in tested], method="holm")
        for (attribute, r, c, _), p_adj in zip(tested, adjusted):
            out[attribute][2][r, c] = bool(np.isfinite(p_adj) and p_adj < data.alpha)
    return out


def draw(data, options):
    table = cells(data, options)
    n_runs = len(next(iter(table.values()))[0])
    finite = np.concatenate([np.abs(values[np.isfinite(values)]) for _, values, _ in table.values()])
    limit = max(0.05, float(finite.max()) if finite.size else 0.0)  # one symmetric colour scale for every panel
    stacked = len(data.classes) > STACK_FROM_CLASSES  # many classes: the panels one above the other
    panel = (2.0 + 0.48 * len(data.classes), 0.3 * n_runs + 0.9)
    size = (panel[0] + 1.0, panel[1] * len(table) + 0.9) if stacked else (panel[0] * len(table) + 1.0, panel[1] + 0.9)
    figure = new_figure(*size)
    axes = figure.subplots(len(table) if stacked else 1, 1 if stacked else len(table), squeeze=False,
                           sharey=not stacked, sharex=stacked).reshape(-1)
    image = None
    for ax, (attribute, (runs, values, significant)) in zip(axes, table.items()):
        image = ax.imshow(values, cmap=SEQUENTIAL_DIVERGING, vmin=-limit, vmax=limit, aspect="auto")
        _annotate(ax, runs, values, significant, attribute, limit, data)
        first, second = list(runs[0].groups[attribute])
        ax.set_title(f"{attribute}: {second} − {first}", fontsize=8.5)
        ax.set_xticks(range(len(data.classes)), [c.replace("_", " ") for c in data.classes], rotation=40, ha="right")
        ax.set_yticks(range(len(runs)), [run.label for run in runs])
        ax.grid(False)
    bar = figure.colorbar(image, ax=list(axes), shrink=0.9)
    bar.set_label(f"per-class {options.heatmap.upper()} difference (second − first group)")
    return figure


def _annotate(ax, runs, values, significant, attribute, limit, data) -> None:
    from matplotlib.patches import Rectangle

    for r, run in enumerate(runs):
        for c, cls in enumerate(data.classes):
            value = values[r, c]
            if not np.isfinite(value):
                ax.text(c, r, "n/a", ha="center", va="center", fontsize=6, color="#555555")
                continue
            mark = "*" if significant[r, c] else ""
            colour = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(c, r, f"{value:+.2f}{mark}", ha="center", va="center", fontsize=6.5, color=colour)
            if significant[r, c]:
                box = Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.6)
                box.set_gid(f"significant-{common.slug(run.name)}-{common.slug(attribute)}-{common.slug(cls)}")
                ax.add_patch(box)


def caption(data, options) -> str:
    _, note = common.shown_runs(data, options.max_runs)
    metric = options.heatmap.upper()
    return (f"Per-class {metric} of the second group minus the first, per attribute with two groups (rows: runs; "
            f"columns: classes). * and a box: two-sided bootstrap Wald p (difference / bootstrap SE) below "
            f"{data.alpha} after Holm correction over every cell drawn. Colour: purple, the first group does better; orange, the second.{note}")
