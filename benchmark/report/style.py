"""How the report's figures look: a colour-blind-safe palette, markers and line styles that survive greyscale,
a matplotlib style applied only inside `style()` (nothing global changes at import), and saving a figure as
SVG, PNG (300 dpi) and PDF.

Colours: Okabe & Ito's palette ("Color Universal Design", 2008), safe for the common colour-vision deficiencies.
Greyscale: every encoder also gets its own line style and every method its own marker, so nothing is told
apart by colour alone. Figures are `matplotlib.figure.Figure` objects (no pyplot, no global state); PNGs are
rendered by the Agg backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442")
"""Blue, orange, bluish green, reddish purple, vermillion, sky blue, black, yellow (yellow last: faint on white)."""
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
FORMATS = ("svg", "png", "pdf")
PNG_DPI = 300
PNG_COMPRESSION = 1
"""zlib level of the PNGs: 1 writes them several times faster than the default 6, files about a third larger."""
GREY = "#7f7f7f"
SEQUENTIAL_DIVERGING = "PuOr_r"
"""The heatmap's colour map: purple-orange, diverging and colour-blind safe (ColorBrewer); cells carry their
number too, so the sign is never read from colour alone."""

RC = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.grid": True,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "svg.fonttype": "path",  # glyphs as paths: the SVG needs no font (self-contained, same on every machine)
    "svg.hashsalt": "cxr-fairbench",  # stable ids in the SVG
    "pdf.fonttype": 42,
    "figure.dpi": 100,
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The report's matplotlib settings, for the duration of the block only."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def new_figure(width: float, height: float):
    """A figure of `width` x `height` inches with constrained layout, outside pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


@dataclass(frozen=True)
class Look:
    colour: str
    line: object
    marker: str


class Palette:
    """Each encoder a colour and a line style, each method a marker, in the order given (stable in a report)."""

    def __init__(self, encoders, methods):
        self.encoders = list(dict.fromkeys(encoders))
        self.methods = list(dict.fromkeys(methods))

    def colour(self, encoder: str) -> str:
        return OKABE_ITO[self.encoders.index(encoder) % len(OKABE_ITO)]

    def line(self, encoder: str):
        return LINE_STYLES[self.encoders.index(encoder) % len(LINE_STYLES)]

    def marker(self, method: str) -> str:
        return MARKERS[self.methods.index(method) % len(MARKERS)]

    def look(self, encoder: str, method: str) -> Look:
        return Look(self.colour(encoder), self.line(encoder), self.marker(method))


def series_look(index: int) -> Look:
    """The look of the index-th series of a figure without encoders (groups, seeds)."""
    return Look(OKABE_ITO[index % len(OKABE_ITO)], LINE_STYLES[index % len(LINE_STYLES)], MARKERS[index % len(MARKERS)])


def save(figure, folder: Path, name: str, formats=FORMATS) -> dict[str, Path]:
    """Write `figure` as folder/name.{svg,png,pdf} (reproducible: no dates in the files); returns the paths.
    The layout is computed for the first file and kept for the others (the same positions, a third faster)."""
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {"Software": None}}
    extra = {"png": {"dpi": PNG_DPI, "pil_kwargs": {"compress_level": PNG_COMPRESSION}}}
    paths = {}
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        figure.savefig(path, format=fmt, metadata=metadata[fmt], **extra.get(fmt, {}))
        figure.set_layout_engine(None)  # the positions stay; "none" would still make every save draw twice
        paths[fmt] = path
    return paths
