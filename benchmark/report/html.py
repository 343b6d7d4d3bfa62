"""The report page: one self-contained HTML file (figures inline as SVG, styles inline, no script or font from
anywhere else), readable offline and printable. Top: what the data and weights are (a banner that cannot be
missed when they are synthetic or random); then the ranked leaderboard with its reason, the figures, the
tables, the mitigation trade-offs and the demographic encoding (where the runs have them), the reproduction
check, and the provenance footer."""

from __future__ import annotations

import html
import re

from benchmark.report.provenance import warnings

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1180px;
padding:1.2rem 1.6rem;color:#111;line-height:1.45;background:#fff}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
h3{font-size:1.02rem;margin:.2rem 0 .4rem}
.banner{border:4px solid #b00020;background:#fff0f0;padding:.8rem 1rem;margin:1rem 0;font-size:1.12rem}
.banner p{margin:.25rem 0}.banner strong{color:#b00020}
.notice{border:2px solid #8a6d00;background:#fffbe6;padding:.5rem .8rem;margin:1rem 0}
nav{font-size:.9rem;margin:.6rem 0}nav a{margin-right:.9rem}
table{border-collapse:collapse;font-size:.8rem;margin:.4rem 0 .3rem}
th,td{border-bottom:1px solid #ddd;padding:.18rem .45rem;text-align:left;vertical-align:top}
th{border-bottom:2px solid #444;background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}.caption{font-size:.84rem;color:#333;max-width:70rem}
figure.report-figure{margin:1.6rem 0;break-inside:avoid;page-break-inside:avoid}
figure.report-figure svg{max-width:100%;height:auto;display:block}
figure.missing{border:1px dashed #999;padding:.6rem}
figcaption{font-size:.84rem;color:#333;max-width:70rem}.files{font-size:.8rem}
footer{margin-top:2.4rem;border-top:2px solid #444;font-size:.8rem}footer table{font-size:.74rem}
code{font-size:.85em}.inside{color:#005a32;font-weight:600}.outside{color:#b00020;font-weight:600}
@media print{nav,.files{display:none}body{max-width:none;padding:0}h2{break-after:avoid}table{font-size:.66rem}
.banner{border:4px solid #000;background:none}.scroll{overflow:visible}}
"""
OPEN_DETAILS = ("window.addEventListener('beforeprint',function(){document.querySelectorAll('details')"
                ".forEach(function(d){d.open=true})});")
"""Printing opens the folded long tables (the only script; inline)."""
LONG_TABLE_ROWS = 60
BEYOND = {"tradeoffs": ("mitigation", "Mitigation trade-offs"), "encoding": ("encoding", "Demographic encoding")}
"""The sections after the tables, where the report has them: table name -> (section id, heading)."""
_ID = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def inline_svg(svg: str, prefix: str) -> str:
    """matplotlib's SVG without its XML prologue, every id (and every reference to one) prefixed, so several
    figures can share one page."""
    start = svg.find("<svg")
    body = svg[start:] if start >= 0 else svg
    ids = set(re.findall(r'\bid="([^"]+)"', body))
    return _ID.sub(lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)), body)


def table_html(table, *, element_id: str = "", folded: bool | None = None) -> str:
    head = "".join(f"<th>{esc(column.name)}</th>" for column in table.columns)
    rows = []
    for row in table.rows:
        cells = "".join(f'<td class="num">{esc(c.text)}</td>' if col.numeric else f"<td>{esc(c.text)}</td>"
                        for col, c in zip(table.columns, row))
        rows.append(f"<tr>{cells}</tr>")
    ident = f' id="{esc(element_id)}"' if element_id else ""
    body = (f'<div class="scroll"><table{ident} data-table="{esc(table.name)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div><p class="caption">{esc(table.caption)}</p>'
            f'<p class="files">files: {_links("tables", table.name, ("md", "csv", "tex"))}</p>')
    if folded if folded is not None else len(table.rows) > LONG_TABLE_ROWS:
        return f"<details><summary>{len(table.rows)} rows (click to open)</summary>{body}</details>"
    return body


def _links(folder: str, name: str, formats) -> str:
    labels = {"svg": "SVG", "png": "PNG (300 dpi)", "pdf": "PDF", "md": "Markdown", "csv": "CSV", "tex": "LaTeX"}
    return " · ".join(f'<a href="{folder}/{name}.{fmt}">{labels[fmt]}</a>' for fmt in formats)


def banner(provenance: dict) -> str:
    lines = warnings(provenance)
    if not lines:
        return ""
    alarming = provenance.get("synthetic_datasets") or provenance.get("random_weights")
    cls, role = ("banner", "alert") if alarming else ("notice", "note")
    return (f'<div class="{cls}" id="data-warning" role="{role}">'
            + "".join(f"<p><strong>{esc(line)}</strong></p>" for line in lines) + "</div>")


def figure_html(rendered) -> str:
    spec = rendered.spec
    title = f"Figure {spec.number}. {esc(spec.title)}"
    if rendered.missing:
        return (f'<figure class="report-figure missing" id="figure-{spec.name}" data-figure="{spec.name}" '
                f'data-missing="true"><h3>{title}</h3><p>Not drawn: {esc(rendered.missing)}.</p></figure>')
    formats = [fmt for fmt in ("svg", "png", "pdf") if fmt in rendered.paths]
    return (f'<figure class="report-figure" id="figure-{spec.name}" data-figure="{spec.name}"><h3>{title}</h3>'
            f'{inline_svg(rendered.svg, spec.name)}<figcaption>{esc(rendered.caption)}</figcaption>'
            f'<p class="files">files: {_links("figures", spec.name, formats)}</p></figure>')


def page(data, figures, tables: dict, *, reference=None) -> str:
    """The whole page. `tables`: name -> Table (leaderboard, seed-study, per-group, per-class, seeds, and where
    present tradeoffs and encoding); `reference`: the --against table or None."""
    from benchmark.report.html_footer import footer

    title = data.document.get("title", "cxr-fairbench report")
    parts = [f"<header><h1>{esc(title)}</h1>", banner(data.provenance), _summary(data), _nav(reference, tables),
             "</header>",
             '<section id="leaderboard"><h2>Ranked leaderboard</h2>',
             f'<p id="ranking-reason"><strong>Default ranking.</strong> {esc(data.document.get("reason", ""))}</p>',
             table_html(tables["leaderboard"], element_id="ranked-table", folded=False), _notes(data), "</section>",
             '<section id="figures"><h2>Figures</h2>', *[figure_html(r) for r in figures], "</section>",
             '<section id="tables"><h2>Tables</h2>']
    for name in ("seed-study", "seeds", "per-group", "per-class"):
        if name in tables:
            parts += [f'<h3 id="table-{name}">{esc(tables[name].title)}</h3>', table_html(tables[name])]
    parts.append("</section>")
    for name, (ident, heading) in BEYOND.items():
        if name in tables:
            parts += [f'<section id="{ident}"><h2>{heading}</h2>', table_html(tables[name], element_id=f"table-{name}",
                                                                             folded=False), "</section>"]
    if reference is not None:
        parts += ['<section id="reproduction"><h2>Reproduction check</h2>', table_html(reference, folded=False),
                  "</section>"]
    parts.append(footer(data))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style><script>{OPEN_DETAILS}</script></head><body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


def _summary(data) -> str:
    ranking = data.ranking
    provenance = data.provenance
    return (f'<p>Task / block: <strong>{esc(data.document.get("block") or "—")}</strong> · {len(data.runs)} runs '
            f'({len(data.ranked)} ranked) · {len(data.classes)} classes ({esc(data.kind)}-label) · utility: '
            f'{esc(data.utility_name)} · {esc(ranking.get("n_boot"))} bootstrap replicates, '
            f'{esc(ranking.get("n_perm"))} permutations · made {esc(provenance.get("created", ""))}</p>')


def _nav(reference, tables: dict) -> str:
    links = [("leaderboard", "leaderboard"), ("figures", "figures"), ("tables", "tables")]
    links += [(ident, heading.lower()) for name, (ident, heading) in BEYOND.items() if name in tables]
    links += [("reproduction", "reproduction check")] if reference is not None else []
    links.append(("provenance", "provenance"))
    return "<nav>" + "".join(f'<a href="#{ident}">{label}</a>' for ident, label in links) + "</nav>"


def _notes(data) -> str:
    if not data.notes:
        return ""
    return ("<details><summary>notes from the evaluation</summary><ul>"
            + "".join(f"<li>{esc(note)}</li>" for note in data.notes) + "</ul></details>")
