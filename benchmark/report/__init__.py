"""`bench report`: the paper's figures and tables from the leaderboard's one evaluation, as one self-contained
page, a folder of figures (SVG, PNG at 300 dpi, PDF) and tables (Markdown, CSV, LaTeX).

    board = benchmark.leaderboard.build(runs, ...)           # the one evaluation: CIs, tests, ranks, Pareto, repeats
    document = collect(board, provenance=provenance(runs))   # plain JSON: leaderboard JSON + per class + curves
    output = write_report(document, "out/", ReportOptions())  # out/report.html, out/figures/, out/tables/

Modules: `data` (collect, typed views), `curves` (ROC and reliability per group of one run), `provenance`,
`style` (palette, markers, the matplotlib style context, saving), `figures` (the registry, one module per
figure), `tables` (as data), `formats` (Markdown, CSV, LaTeX), `html` and `html_footer` (the page),
`reference` (the reproduction check), `writer` (the folder). Nothing here resamples: every CI, p-value and
rank is the leaderboard's. Documentation: docs/report.md.
"""

from benchmark.report.data import ReportData, collect
from benchmark.report.options import ReportOptions
from benchmark.report.provenance import provenance
from benchmark.report.writer import DATA_FILE, PAGE, ReportOutput, write_report

__all__ = ["DATA_FILE", "PAGE", "ReportData", "ReportOptions", "ReportOutput", "collect", "provenance", "write_report"]
