"""`bench report`: the paper's figures and tables as one self-contained page, from the leaderboard's one
evaluation of the runs of a task, of an experiment (`bench run`'s folder), or of outside prediction files.

    bench report --task nih6x200 --out report/                      runs of a task in the workdir
    bench report --experiment seed-study                            an experiment's runs (or a path to its folder)
    bench report --predictions a=a.csv --predictions b=b.csv --out report/
    bench report --experiment seed-study --against experiments/seed-study-published.csv

It writes report.html (figures inline as SVG, no network), figures/ (SVG, PNG at 300 dpi, PDF) and tables/
(Markdown, CSV, LaTeX). What each figure shows: docs/report.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.commands.options import positive_int

ERR_SOURCE = "give --task TASK (runs in the workdir), --experiment NAME (a bench run experiment) or --predictions NAME=FILE"


def register(subparsers, common) -> None:
    from benchmark.commands.leaderboard import add_evaluation_arguments

    parser = subparsers.add_parser("report", parents=[common], help="figures, tables and one self-contained HTML page",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default=None, help="the task whose runs to report (e.g. nih6x200)")
    parser.add_argument("--experiment", default=None, metavar="NAME|DIR",
                        help="the runs of a `bench run` experiment (its name in the workdir, or its folder); the "
                             "evaluation options default to its [leaderboard] table")
    parser.add_argument("--predictions", action="append", default=[], metavar="[BLOCK:]NAME[@SEED]=FILE",
                        help="an outside prediction file (CSV or Parquet in the prediction schema); repeatable")
    parser.add_argument("--model", default=None, help="only runs of this encoder")
    parser.add_argument("--method", default=None, help="only runs of this method")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="the report folder (default with --experiment: its report/<task>/ folder); an existing "
                             "folder must be empty or an earlier report")
    parser.add_argument("--against", default=None, metavar="CSV",
                        help="reproduction check: a published table (encoder,method,figure,value,source) set beside "
                             "our values and CIs (e.g. experiments/seed-study-published.csv)")
    parser.add_argument("--curves-run", default=None, metavar="RUN",
                        help="the run whose ROC and reliability curves per group are drawn (default: the top-ranked)")
    parser.add_argument("--plane-y", default="worst_group_utility", metavar="FIGURE",
                        help="y of the utility-fairness plane: worst_group_utility (default) or a gap, e.g. f1_gap_sex")
    parser.add_argument("--heatmap", default="f1", choices=("f1", "auc"),
                        help="the per-class metric of the disease x group heatmap (default f1)")
    parser.add_argument("--max-runs", type=positive_int, default=12,
                        help="runs shown in the per-run figures (forest plot, heatmap), best-placed first (default 12)")
    parser.add_argument("--formats", default="svg,png,pdf",
                        help="figure files to write, comma-separated from svg, png, pdf (default all; the page "
                             "always inlines SVG)")
    add_evaluation_arguments(parser, defaults=False)
    parser.set_defaults(func=run)


def report_options(args):
    from benchmark.core.errors import BenchError
    from benchmark.report import ReportOptions
    from benchmark.report.style import FORMATS
    from fairness.registry import is_known

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise BenchError(f"--formats {args.formats!r}: choose from {', '.join(FORMATS)}")
    if not is_known(args.plane_y):
        raise BenchError(f"--plane-y {args.plane_y!r} is not a figure of the figures table (docs/FAIRNESS.md)")
    return ReportOptions(plane_y=args.plane_y, heatmap=args.heatmap, max_runs=args.max_runs, formats=formats)


def run(args) -> int:
    import sys

    from benchmark.commands.report_sources import document_for
    from benchmark.core.errors import BenchError
    from benchmark.report import write_report
    from benchmark.ui import console, err_console

    if not (args.task or args.experiment or args.predictions):
        raise BenchError(ERR_SOURCE)
    options = report_options(args)
    document, out, notes = document_for(args, argv=getattr(args, "argv", None) or sys.argv[1:] or ["report"])
    for note in notes:
        err_console.print(f"[yellow]note[/] {note}", highlight=False)
    result = write_report(document, out, options, against=args.against)
    drawn = [f.spec.name for f in result.figures if not f.missing]
    console.print(f"report: {result.page}", highlight=False, soft_wrap=True)
    console.print(f"  {len(drawn)} figures ({', '.join(drawn)}) in {result.draw_seconds:.1f} s, {len(result.tables)} "
                  f"tables; files under {result.folder}; total {result.seconds:.1f} s", highlight=False, soft_wrap=True)
    for figure in result.figures:
        if figure.missing:
            console.print(f"  figure {figure.spec.name} left out: {figure.missing}", highlight=False)
    if result.reference:
        console.print(f"  {result.reference} (tables/reproduction.md)", highlight=False)
    console.print(f"open it in a browser: {Path(result.page).as_uri()}", highlight=False, soft_wrap=True)
    return 0
