"""Write a report folder from a report data document (`benchmark.report.data.collect`):

    out/report.html        the page (self-contained)
    out/figures/<name>.svg, .png (300 dpi), .pdf
    out/tables/<name>.md, .csv, .tex
    out/report-data.json   the data every number and figure was drawn from (the leaderboard's JSON inside)

Everything is written into a folder beside `out` first and swapped in at the end, so a failure leaves `out` as it
was. `out` must be empty, absent, or an earlier report (it holds report.html): other folders are refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.core.atomic import write_text
from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress
from benchmark.report.options import ReportOptions

PAGE = "report.html"
DATA_FILE = "report-data.json"
ERR_NOT_REPORT = ("--out {out} holds files and no {page}: it is not an earlier report, so nothing is written there; "
                  "choose a new or empty folder")


@dataclass
class ReportOutput:
    folder: Path
    page: Path
    figures: list = field(default_factory=list)  # figures.Rendered
    tables: list = field(default_factory=list)  # table names
    reference: str | None = None  # the reproduction check's one-line summary
    draw_seconds: float = 0.0
    seconds: float = 0.0


def check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; give a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not (out / PAGE).is_file():
        raise BenchError(ERR_NOT_REPORT.format(out=out, page=PAGE))


def write_report(document: dict, out, options: ReportOptions = ReportOptions(), *, against=None,
                 progress: Progress = SILENT, workers: int | None = None) -> ReportOutput:
    """Draw, tabulate and write the report of `document` into `out` (see the module docstring); `workers`:
    processes that draw the figures (default: one per core for large reports, `figures.default_workers`)."""
    from benchmark.report.data import ReportData
    from benchmark.report.reference import read_reference

    started = time.perf_counter()
    data = ReportData.from_json(document)
    published = read_reference(against) if against else None  # a bad reference file fails before any drawing
    out = Path(out).expanduser().resolve()
    check_target(out)
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        result = _write(data, document, staging, options, published, progress, workers)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.folder, result.page = out, out / PAGE
    result.seconds = time.perf_counter() - started
    return result


def _write(data, document, folder: Path, options, published, progress, workers) -> ReportOutput:
    from benchmark.report import reference as check
    from benchmark.report.figures import render
    from benchmark.report.formats import write_table
    from benchmark.report.html import page
    from benchmark.report.tables import all_tables

    drawing = time.perf_counter()
    figures = render(data, options, folder / "figures", workers=workers)
    draw_seconds = time.perf_counter() - drawing
    progress.note(f"figures: {sum(1 for f in figures if not f.missing)} drawn in {draw_seconds:.1f} s"
                  + "".join(f"; {f.spec.name} left out ({f.missing})" for f in figures if f.missing))
    tables = {table.name: table for table in all_tables(data)}
    reproduction = check.check(data, published) if published is not None else None
    for table in [*tables.values(), *([reproduction] if reproduction else [])]:
        write_table(table, folder / "tables")
    write_text(folder / DATA_FILE, json.dumps(document, indent=1, sort_keys=True))
    write_text(folder / PAGE, page(data, figures, tables, reference=reproduction))
    return ReportOutput(folder, folder / PAGE, figures, list(tables),
                        check.summary(reproduction) if reproduction else None, draw_seconds)


def _swap(staging: Path, out: Path) -> None:
    """Put the finished folder in place of `out` (an earlier report there is removed after the rename)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
