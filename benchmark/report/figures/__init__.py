"""The report's figures as data: number, name (the file stem and the page's anchor), title, and the module
that draws it. Each module has `needs(data, options) -> reason or None` (why the figure is left out, e.g. no
repeated seeds), `draw(data, options) -> matplotlib Figure` and `caption(data, options) -> str`.

    for spec in FIGURES: spec.module.needs(data, options) or spec.module.draw(data, options)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from benchmark.report.figures import calibration, forest, heatmap, plane, progression, ranks, seeds


@dataclass(frozen=True)
class FigureSpec:
    number: int
    name: str
    title: str
    module: ModuleType


FIGURES = (
    FigureSpec(1, "plane", "Utility–fairness plane", plane),
    FigureSpec(2, "forest", "Utility per group (forest plot)", forest),
    FigureSpec(3, "heatmap", "Disease × group differences", heatmap),
    FigureSpec(4, "progression", "Method progression per encoder", progression),
    FigureSpec(5, "calibration", "Reliability and ROC curves per group", calibration),
    FigureSpec(6, "ranks", "Rank uncertainty", ranks),
    FigureSpec(7, "seeds", "Seeds: mean ± SD over repeats", seeds),
)


@dataclass
class Rendered:
    """A figure as the report holds it: its files and SVG text, or the reason it was left out."""

    spec: FigureSpec
    caption: str = ""
    missing: str | None = None
    paths: dict = field(default_factory=dict)
    svg: str = ""
    seconds: float = 0.0


WORKER_PRELOAD = ["numpy", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.backends.backend_svg",
                  "matplotlib.backends.backend_pdf", "benchmark.report.figures"]
PARALLEL_FROM_RUNS = 24
"""Reports of this many runs or more draw their figures in several processes (one per idle core, at most 4):
starting them costs about two CPU seconds, which only a large report on idle cores wins back."""


def default_workers(data) -> int:
    """1 for a small report; else the cores not busy with other work (1-minute load average), at most 4."""
    if len(data.runs) < PARALLEL_FROM_RUNS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(4, int(cores - busy + 0.5)))


def draw_one(data, options, folder: Path, spec: FigureSpec) -> Rendered:
    """Draw and save one figure (inside the report's style)."""
    from benchmark.report.style import save, style

    started = time.perf_counter()
    with style():
        figure = spec.module.draw(data, options)
        paths = save(figure, folder, spec.name, tuple(dict.fromkeys(("svg", *options.formats))))
    return Rendered(spec, caption=spec.module.caption(data, options), paths=paths,
                    svg=paths["svg"].read_text(encoding="utf-8"), seconds=time.perf_counter() - started)


def render(data, options, folder: Path, *, workers: int | None = None) -> list[Rendered]:
    """Draw every figure the data allows into `folder` (SVG always, and `options.formats`), in `workers`
    processes (default: `default_workers`)."""
    reasons = {spec.name: spec.module.needs(data, options) for spec in FIGURES}
    drawable = [spec for spec in FIGURES if not reasons[spec.name]]
    workers = default_workers(data) if workers is None else workers
    if workers > 1 and len(drawable) > 1:
        drawn = _render_in_processes(data, options, folder, drawable, min(workers, len(drawable)))
    else:
        drawn = {spec.name: draw_one(data, options, folder, spec) for spec in drawable}
    return [drawn[spec.name] if spec.name in drawn else Rendered(spec, missing=reasons[spec.name]) for spec in FIGURES]


_WORKER: dict = {}


def _start_worker(document: dict, options, folder: Path) -> None:
    from benchmark.report.data import ReportData

    _WORKER.update(data=ReportData.from_json(document), options=options, folder=folder)


def _draw_in_worker(name: str) -> tuple:
    spec = next(spec for spec in FIGURES if spec.name == name)
    rendered = draw_one(_WORKER["data"], _WORKER["options"], _WORKER["folder"], spec)
    return rendered.caption, rendered.paths, rendered.svg, rendered.seconds


def _render_in_processes(data, options, folder: Path, specs, workers: int) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")  # never fork this process (polars runs threads in it)
    context.set_forkserver_preload(WORKER_PRELOAD)  # imported once by the server, shared by the workers it forks
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(data.document, options, folder)) as pool:
        futures = {spec.name: pool.submit(_draw_in_worker, spec.name) for spec in specs}
        out = {}
        for spec in specs:
            caption, paths, svg, seconds = futures[spec.name].result()
            out[spec.name] = Rendered(spec, caption=caption, paths=paths, svg=svg, seconds=seconds)
    return out
