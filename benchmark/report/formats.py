"""A `Table` written out: Markdown (CIs in the cell), CSV (numbers in columns of their own: value, low, high)
and LaTeX (booktabs; `\\usepackage{booktabs}`, and `longtable` for long tables)."""

from __future__ import annotations

import csv
import io

LONG_TABLE_ROWS = 45
"""Tables with more rows are written as a `longtable` (it breaks across pages)."""
LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "<": r"$<$",
                 ">": r"$>$", "Δ": r"$\Delta$", "±": r"$\pm$", "◆": r"$\diamond$", "–": "--", "≥": r"$\geq$",
                 "≤": r"$\leq$", "×": r"$\times$", "→": r"$\rightarrow$"}


def markdown(table) -> str:
    names = [column.name for column in table.columns]
    lines = [f"### {table.title}", "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell.text.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    return "\n".join(lines + ["", table.caption, ""])


def _number(value) -> str:
    return "" if value is None or value != value else repr(float(value))


def csv_text(table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    head = []
    for column in table.columns:
        head += [column.csv_name, f"{column.csv_name}_low", f"{column.csv_name}_high"] if column.numeric else [column.name]
    writer.writerow(head)
    for row in table.rows:
        out = []
        for column, cell in zip(table.columns, row):
            out += [_number(cell.value), _number(cell.low), _number(cell.high)] if column.numeric else [cell.text]
        writer.writerow(out)
    return buffer.getvalue()


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in str(text))


def latex(table) -> str:
    """booktabs: \\toprule, \\midrule, \\bottomrule; a float with caption and label, or a longtable."""
    spec = "".join("r" if column.numeric else "l" for column in table.columns)
    head = " & ".join(latex_escape(column.name) for column in table.columns) + r" \\"
    body = [" & ".join(latex_escape(cell.text) for cell in row) + r" \\" for row in table.rows]
    caption, label = latex_escape(table.title + ". " + table.caption), f"tab:{table.name}"
    preamble = [f"% {table.title} (cxr-fairbench); needs \\usepackage{{booktabs}}"]
    if len(table.rows) > LONG_TABLE_ROWS:
        return "\n".join(preamble + [r"% and \usepackage{longtable}", f"\\begin{{longtable}}{{{spec}}}",
                                     f"\\caption{{{caption}}}\\label{{{label}}} \\\\", r"\toprule", head, r"\midrule",
                                     r"\endhead", r"\bottomrule", r"\endfoot"] + body + [r"\end{longtable}", ""])
    return "\n".join(preamble + [r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{caption}}}",
                                 f"\\label{{{label}}}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule", head,
                                 r"\midrule"] + body + [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def write_table(table, folder) -> dict:
    """tables/<name>.md, .csv, .tex; returns the paths."""
    from benchmark.core.atomic import write_text

    paths = {}
    for suffix, render in (("md", markdown), ("csv", csv_text), ("tex", latex)):
        paths[suffix] = write_text(folder / f"{table.name}.{suffix}", render(table))
    return paths
