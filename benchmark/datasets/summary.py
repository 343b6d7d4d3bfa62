"""What a manifest holds, per split: rows, patients, sex, age groups, race, insurance, views and findings, with the
masked (null: uncertain under --uncertain ignore, or unlabelled) labels counted (dict and rich tables)."""

from __future__ import annotations

import polars as pl
from rich.console import Console
from rich.table import Table

from benchmark.core.manifest import labelled_columns
from benchmark.core.schema import ATTRIBUTE_COLUMNS, SPLITS

AGE_GROUPS: tuple[str, ...] = ("<60", ">=60", "unknown")


def _counts(rows: pl.DataFrame, column: str) -> dict[str, int]:
    counted = rows.group_by(column).len().sort(column, nulls_last=True)
    return {("unknown" if value is None else str(value)): int(count) for value, count in counted.iter_rows()}


def _part(rows: pl.DataFrame, labels: tuple[str, ...]) -> dict:
    age = rows["age"]
    groups = {
        "<60": int((age < 60).sum()),
        ">=60": int((age >= 60).sum()),
        "unknown": int(age.null_count()),
    }
    return {
        "rows": rows.height,
        "patients": rows["patient_id"].n_unique(),
        "sex": _counts(rows, "sex"),
        "age_group": groups,
        "age": {
            "mean": None if age.mean() is None else round(float(age.mean()), 1),
            "min": None if age.min() is None else float(age.min()),
            "max": None if age.max() is None else float(age.max()),
        },
        "view": _counts(rows, "view"),
        **{name: _counts(rows, name) for name in ATTRIBUTE_COLUMNS if name in rows.columns},
        "findings": {name: int(rows[name].sum() or 0) for name in labels},
        "masked": {name: int(rows[name].null_count()) for name in labels},
    }


def summarise(manifest: pl.DataFrame, report: dict | None = None) -> dict:
    """A JSON-ready summary: totals, one block per split, and the adapter's report (repairs, notes)."""
    labels = labelled_columns(manifest)
    summary = {"labels": list(labels), "all": _part(manifest, labels),
               "splits": {split: _part(manifest.filter(pl.col("split") == split), labels) for split in SPLITS}}
    if report is not None:
        summary["report"] = report
    return summary


def print_summary(summary: dict, console: Console, *, title: str = "dataset") -> None:
    """Rich tables of a `summarise` result: overview, demographics per split, findings per split, notes."""
    columns = ["all", *SPLITS]
    parts = [summary["all"], *(summary["splits"][split] for split in SPLITS)]
    report = summary.get("report", {})

    overview = Table(title=f"{title}: rows and demographics", show_lines=False)
    overview.add_column("")
    for column in columns:
        overview.add_column(column, justify="right")
    overview.add_row("images", *(f"{part['rows']:,}" for part in parts))
    overview.add_row("patients", *(f"{part['patients']:,}" for part in parts))
    for sex in ("F", "M", "unknown"):
        overview.add_row(f"sex {sex}", *(f"{part['sex'].get(sex, 0):,}" for part in parts))
    for group in AGE_GROUPS:
        overview.add_row(f"age {group}", *(f"{part['age_group'][group]:,}" for part in parts))
    overview.add_row("mean age", *("-" if part["age"]["mean"] is None else f"{part['age']['mean']:.1f}" for part in parts))
    views = sorted({view for part in parts for view in part["view"]})
    for view in views:
        overview.add_row(f"view {view}", *(f"{part['view'].get(view, 0):,}" for part in parts))
    for attribute, groups in ATTRIBUTE_COLUMNS.items():
        if any(set(part.get(attribute, {})) - {"unknown"} for part in parts):
            for group in (*groups, "unknown"):
                overview.add_row(f"{attribute} {group}", *(f"{part[attribute].get(group, 0):,}" for part in parts))
    console.print(overview)

    masked = any(any(part["masked"].values()) for part in parts)
    findings = Table(title=f"{title}: images per finding" + (" (masked labels in brackets)" if masked else ""))
    findings.add_column("finding")
    for column in columns:
        findings.add_column(column, justify="right")
    for name in summary.get("labels", parts[0]["findings"]):
        findings.add_row(name, *(f"{part['findings'][name]:,}" + (f" ({part['masked'][name]:,})" if masked else "")
                                 for part in parts))
    console.print(findings)

    if report:
        found = report.get("images_found")
        lines = [
            f"metadata: {report.get('csv', report.get('metadata', '?'))}; images: "
            + (f"{found:,} found in {report.get('image_layout', '?')}" if found is not None else str(report.get("images", "?"))),
            f"splits: {report.get('split_source', '?')}",
            *report.get("notes", []),
        ]
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False)
