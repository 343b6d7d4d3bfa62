"""The reproduction check (`bench report --against FILE`): a published table's numbers beside ours.

The file is CSV with a header `encoder,method,figure,value,source` (and optionally `note`): `encoder` and
`method` as our runs name them (`bench models`, the method names of docs/run.md; an empty method means the
source does not say which: every method of the encoder is compared), `figure` a name of the figures table
(docs/FAIRNESS.md), `value` as a fraction (0.596) or a percentage (59.6%), `source` where the number is
published. Each published value is set beside every matching run's value and 95% CI, and the check says
whether the published value lies inside the CI.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.report.tables import Cell, Column, Table, digits, figure_cell

REQUIRED = ("encoder", "method", "figure", "value", "source")
ERR_COLUMNS = "{path}: the reference CSV needs the columns {required} (it has {found}); see docs/report.md"
ERR_VALUE = "{path}, line {line}: value {value!r} is not a number (give 0.596 or 59.6%)"
ERR_FIGURE = "{path}, line {line}: unknown figure {figure!r}; use a name of the figures table (docs/FAIRNESS.md)"
ERR_EMPTY = "{path}, line {line}: {column} is empty; every row names {required}"


@dataclass(frozen=True)
class Published:
    encoder: str
    method: str
    figure: str
    value: float
    source: str
    note: str = ""
    line: int = 0


def parse_value(text: str) -> float:
    text = text.strip()
    return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)


def read_reference(path) -> list[Published]:
    """The rows of a reference CSV (BenchError naming the file, line and value of a bad one)."""
    from fairness.registry import is_known

    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(row for row in handle if row.strip() and not row.lstrip().startswith("#"))
            fields = [name.strip() for name in reader.fieldnames or []]
            if not set(REQUIRED) <= set(fields):
                raise BenchError(ERR_COLUMNS.format(path=path, required=", ".join(REQUIRED), found=", ".join(fields)))
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except OSError as error:
        raise BenchError(f"{path}: cannot read the reference CSV ({error.strerror})") from None
    out = []
    for line, row in enumerate(rows, start=2):
        for column in ("encoder", "figure", "value", "source"):
            if not row.get(column):
                raise BenchError(ERR_EMPTY.format(path=path, line=line, column=column, required=", ".join(REQUIRED)))
        if not is_known(row["figure"]):
            raise BenchError(ERR_FIGURE.format(path=path, line=line, figure=row["figure"]))
        try:
            value = parse_value(row["value"])
        except ValueError:
            raise BenchError(ERR_VALUE.format(path=path, line=line, value=row["value"])) from None
        out.append(Published(row["encoder"], row.get("method", ""), row["figure"], value, row["source"],
                             row.get("note", ""), line))
    return out


def verdict(published: float, estimate) -> str:
    if not estimate.defined:
        return "not computed"
    if not estimate.has_ci:
        return "no CI"
    return "inside" if estimate.low <= published <= estimate.high else "outside"


def check(data, published: list[Published]) -> Table:
    """The reproduction table: every published value beside every matching run (or a row saying none matched)."""
    table = Table("reproduction", "Reproduction check: published values beside ours",
                  "Published: the value the source gives (as a fraction). Ours: the run's value with its 95% "
                  "bootstrap CI. Inside: whether the published value lies inside our CI. Gaps are signed as the "
                  "figures table defines them (M - F, >= 60 - < 60); a source that gives a size without a sign "
                  "compares only in size.",
                  [Column("encoder"), Column("method"), Column("figure"), Column("published", True, "published"),
                   Column("source"), Column("our run"), Column("ours", True, "ours"), Column("inside CI"),
                   Column("ours − published", True, "difference")])
    for row in published:
        runs = [run for run in data.runs
                if run.encoder == row.encoder and (not row.method or row.method in ("*", run.method))]
        shown = Cell(f"{row.value:.{digits(row.figure)}f}", row.value)
        start = [Cell(row.encoder), Cell(row.method or "(not stated)"), Cell(row.figure), shown,
                 Cell(row.source + (f" ({row.note})" if row.note else ""))]
        if not runs:
            table.rows.append(start + [Cell("no run of this encoder and method"), Cell("n/a"), Cell("not checked"),
                                       Cell("n/a")])
        for run in runs:
            estimate = run.figure(row.figure)
            difference = estimate.value - row.value if estimate.defined else None
            table.rows.append(start + [Cell(run.label), figure_cell(estimate, row.figure, data.alpha),
                                       Cell(verdict(row.value, estimate)),
                                       Cell("n/a" if difference is None else f"{difference:+.{digits(row.figure)}f}",
                                            difference)])
    return table


def summary(table: Table) -> str:
    verdicts = [row[7].text for row in table.rows]
    checked = [v for v in verdicts if v in ("inside", "outside")]
    published = len({(row[0].text, row[1].text, row[2].text, row[3].text) for row in table.rows})
    return (f"reproduction check: {verdicts.count('inside')} of {len(checked)} comparisons of run with published value "
            f"inside our 95% CI ({published} published value{'s' if published != 1 else ''}"
            + (f"; {verdicts.count('not checked')} without a matching run" if "not checked" in verdicts else "") + ")")
