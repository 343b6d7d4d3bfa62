"""Write leaderboards out: a rich terminal table, markdown, tidy CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

from benchmark.core.errors import BenchError
from benchmark.leaderboard import cells, export, tables

FORMATS = ("table", "md", "csv", "json")
ERR_FORMAT = "unknown format {fmt!r}; choose one of: " + ", ".join(FORMATS)


def sections(boards, *, fmt: str, by_class: bool, by_group: bool, title: str, alpha: float, across=None) -> list:
    """(title, header, rows, caption) of every table to show, board by board, then the comparison across."""
    out = []
    for board in boards:
        name = title or "leaderboard"
        if len(boards) > 1 or board.block:
            name = f"{name}: {board.block}" if board.block else name
        header, body = tables.main_table(board, alpha=alpha, compact=fmt == "table")
        out.append((name, header, body, tables.legend(board, alpha)))
        repeats = tables.repeats_table(board)
        if repeats:
            out.append(("repeats: runs that differ only in seed (mean ± SD over seeds)", *repeats, ""))
        if by_group:
            out += [(group_title, header, body, "prevalence = positives / images (n+ = positives); flags as in "
                     "the table") for group_title, header, body in tables.group_tables(board)]
        if by_class:
            out.append(("per class", *tables.class_table(board), ""))
        if board.notes and fmt == "md":  # the terminal prints notes on stderr
            out.append(("notes", ["note"], [[note] for note in board.notes], ""))
    if across is not None:
        out.append(across_section(across))
    return out


def across_section(across) -> tuple:
    header = ["configuration", "mean rank"] + [f"rank in {block}" for block in across.blocks]
    body = [[label, f"{mean:.2f}"] + [f"{across.ranks[b, k]:g}" for b in range(len(across.blocks))]
            for k, (label, mean) in enumerate(zip(across.configurations, across.mean_rank))]
    if across.note:
        caption = across.note
    else:
        caption = (f"Friedman chi2 = {across.statistic:.3f}, p = {cells.p_cell(across.p_value)} "
                   f"({len(across.configurations)} configurations, {len(across.blocks)} blocks); Nemenyi critical "
                   f"difference (alpha {across.alpha}) = {across.critical_difference:.3f}: mean ranks further apart "
                   f"differ")
    if across.left_out:
        caption += f"; not in every block, left out: {', '.join(across.left_out)}"
    return ("ranks across blocks", header, body, caption)


def _markdown(parts) -> str:
    lines = []
    for name, head, body, caption in parts:
        lines += [f"### {name}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cell.replace("\n", " ") for cell in row) + " |" for row in body]
        lines += ["", caption, ""] if caption else [""]
    return "\n".join(lines)


def _print_rich(parts, console=None) -> None:
    from rich.table import Table

    if console is None:
        from benchmark.ui import console

    for name, head, body, caption in parts:
        table = Table(title=name, caption=caption or None)
        for column in head:
            table.add_column(column, overflow="fold")
        for row in body:
            table.add_row(*row)
        console.print(table)


def render(boards, *, fmt: str = "table", by_class: bool = False, by_group: bool = False, title: str = "",
           alpha: float = 0.05, across=None, console=None) -> str | None:
    """Return the leaderboards as text (md, csv, json) or print them as rich tables (returns None) on `console`
    (default: the terminal's)."""
    if fmt not in FORMATS:
        raise BenchError(ERR_FORMAT.format(fmt=fmt))
    if fmt == "json":
        return json.dumps(export.to_json(boards, across), indent=2)
    if fmt == "csv":
        return export.tidy_csv(boards, by_class=by_class)
    parts = sections(boards, fmt=fmt, by_class=by_class, by_group=by_group, title=title, alpha=alpha, across=across)
    if fmt == "md":
        return _markdown(parts)
    _print_rich(parts, console)
    return None


COMPARE_COLUMNS = ("figure", "a", "b", "difference", "ci_low", "ci_high", "p", "p_adj")


def render_comparison(comparison, *, fmt: str = "table", alpha: float = 0.05, console=None) -> str | None:
    """The paired differences A - B of every figure (table, md, csv or json)."""
    if fmt not in FORMATS:
        raise BenchError(ERR_FORMAT.format(fmt=fmt))
    if fmt == "json":
        return json.dumps({"compare": export.comparison_json(comparison)}, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COMPARE_COLUMNS)
        for row in comparison.differences:
            writer.writerow([export.text(row.figure)] + [export.number(x) for x in (
                row.a, row.b, row.difference, *row.ci, row.p_value, row.p_adj)])
        return buffer.getvalue()
    header = ["figure", comparison.a, comparison.b, "A - B [95% CI]", "p", "p (Holm)"]
    body = [[row.figure, _fixed(row.a, row.figure), _fixed(row.b, row.figure), _difference(row, alpha),
             cells.p_cell(row.p_value), cells.p_cell(row.p_adj)] for row in comparison.differences]
    caption = (f"A = {comparison.a}, B = {comparison.b}; paired bootstrap over the same {comparison.n_boot} patient "
               f"draws; p: two-sided bootstrap test of A - B = 0 (never below 2 / (n_boot + 1)); * p < {alpha} for "
               f"that figure alone; p (Holm): corrected over the {len(comparison.differences)} figures compared")
    parts = [(f"compare {comparison.a} with {comparison.b}", header, body, caption)]
    if fmt == "md":
        return _markdown(parts)
    _print_rich(parts, console)
    return None


def _fixed(value, name: str) -> str:
    import math

    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{cells.digits(name)}f}"


def _difference(row, alpha: float) -> str:
    import math

    text = _fixed(row.difference, row.figure)
    if math.isfinite(row.ci[0]):
        places = cells.digits(row.figure)
        text += f" [{row.ci[0]:.{places}f}, {row.ci[1]:.{places}f}]"
    if row.p_value is not None and row.p_value < alpha:
        text += " *"
    return text
