"""What the figures share: axis labels with units, CI bars, the palette of a report, the runs a per-run figure
shows, and ids for the drawn elements (the SVG keeps them, so tests and the browser check can find them)."""

from __future__ import annotations

import math
import re

import numpy as np

from benchmark.report.data import ordered_encoders, ordered_methods
from benchmark.report.style import GREY, Palette

UNIT = {"rate": "0–1", "squared": "squared error"}
DIFFERENCE_UNIT = {"rate": "−1 to 1", "squared": "squared error"}


def slug(text: str) -> str:
    """A piece of an element id: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def figure_label(data, name: str) -> str:
    """An axis label: what the figure is, with its units."""
    from fairness.registry import figure_spec, is_known

    from benchmark.report.tables import header

    if name == "utility":
        return f"overall utility: {data.utility_name} ({UNIT['rate']})"
    if name == "worst_group_utility":
        return f"worst-group utility: {data.utility_name} in the worst cell ({UNIT['rate']})"
    if not is_known(name):
        return name
    spec = figure_spec(name)[0]
    if spec.kind == "gap" and spec.form in ("signed", "difference"):
        return f"{header(name)} (difference, {DIFFERENCE_UNIT.get(spec.units, spec.units)})"
    return f"{header(name)} ({UNIT.get(spec.units, spec.units)})"


def is_signed(name: str) -> bool:
    from fairness.registry import figure_spec, is_known

    return is_known(name) and figure_spec(name)[0].better == "zero"


def bars(estimates) -> np.ndarray:
    """[2, n] distances below and above each value for `errorbar` (0 where a CI is undefined)."""
    low = [e.value - e.low if e.has_ci else 0.0 for e in estimates]
    high = [e.high - e.value if e.has_ci else 0.0 for e in estimates]
    return np.array([low, high], dtype=np.float64).clip(min=0.0)


def palette_of(data) -> Palette:
    return Palette(ordered_encoders(data.runs), ordered_methods(data.runs))


def shown_runs(data, limit: int) -> tuple[list, str]:
    """The first `limit` runs in the leaderboard's order, and a sentence when some are left out."""
    runs = data.runs[:limit]
    left = len(data.runs) - len(runs)
    note = (f" The {len(runs)} best-placed of {len(data.runs)} runs are shown (--max-runs); every run is in the "
            f"tables.") if left > 0 else ""
    return runs, note


def errorbar(ax, x, y, *, xerr=None, yerr=None, look, gid: str, hollow: bool = False, size: float = 5.5,
             label: str | None = None):
    """One point with CI bars in `look` (colour, marker, the bars in the encoder's line style)."""
    container = ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=look.marker, color=look.colour, ms=size,
                            mfc="white" if hollow else look.colour, mec=look.colour, elinewidth=0.9, capsize=1.8,
                            label=label, zorder=3)
    container.lines[0].set_gid(gid)
    for collection in container.lines[2]:
        collection.set_linestyle(look.line)
    return container


def reference_line(ax, value: float, *, vertical: bool = True, gid: str, label: str | None = None,
                   style=":", colour: str = GREY) -> None:
    if value is None or not math.isfinite(value):
        return
    line = (ax.axvline if vertical else ax.axhline)(value, color=colour, linestyle=style, linewidth=1.0,
                                                    label=label, zorder=1)
    line.set_gid(gid)


def empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=GREY)
    ax.set_axis_off()


def legend_handles(palette: Palette, encoders, methods) -> tuple[list, list]:
    """Handles for an encoder legend (colour and line style) and a method legend (marker, in black)."""
    from matplotlib.lines import Line2D

    enc = [Line2D([], [], color=palette.colour(e), linestyle=palette.line(e), label=e) for e in encoders]
    met = [Line2D([], [], color="black", marker=palette.marker(m), linestyle="none", label=m) for m in methods]
    return enc, met
