"""The report's tables beyond measuring (issue 17), from the data document's `tradeoffs` and `probes` sections
(`benchmark.report.data.mitigation_sections`), in the `Table` form every other table has:

- `tradeoffs`: each mitigation run beside its plain run, the pairing and verdict of `bench tradeoff` (did the
  targeted gap shrink, and by levelling up or down?); absent when the report has no mitigation run;
- `encoding`: beside each encoder, the newest demographic-encoding probe of each attribute (`bench probe`);
  absent when none of the report's encoders has a probe.
"""

from __future__ import annotations

from benchmark.report.data import Estimate, ReportData
from benchmark.report.tables import Cell, Column, Table, figure_cell, text

TRADEOFF_CAPTION = (
    "Each mitigation run beside the newest plain run of its kind (same encoder, weights, store, seed, task and "
    "datasets; `bench tradeoff`). Changes are mitigated - plain, with 95% CIs from {n_boot} paired "
    "patient-clustered bootstrap replicates; a change counts only when its CI excludes 0. Worst (best) group: the "
    "lowest (highest) per-group utility over the protected attribute's groups, taken within each replicate. "
    "Levelling down: the gap shrank because the better-off group lost, not because the worst-off group gained "
    "(docs/mitigation.md). [attribute at test]: the method needs each test image's protected attribute.")


def _signed(values: dict | None, name: str) -> Cell:
    """A change: "+0.012 [-0.010, +0.030]"; "n/a" when undefined."""
    return figure_cell(Estimate.of(values), name, signed=True)


def tradeoff_table(data: ReportData) -> Table | None:
    section = data.tradeoffs
    if not section["comparisons"] and not section["notes"]:
        return None
    labels = {run.name: run.label for run in data.runs}
    caption = TRADEOFF_CAPTION.format(n_boot=data.ranking.get("n_boot"))
    if section["notes"]:
        caption += " Not compared: " + " ".join(section["notes"])
    table = Table("tradeoffs", "Mitigation trade-offs: levelling up or down", caption,
                  [Column("run"), Column("plain run"), Column("protect"), Column("gap"),
                   Column("gap, plain", True, "gap_plain"), Column("gap, mitigated", True, "gap_mitigated"),
                   Column("gap change", True, "gap_change"), Column("utility"),
                   Column("worst group, plain", True, "worst_plain"),
                   Column("worst group, mitigated", True, "worst_mitigated"),
                   Column("worst-group change", True, "worst_change"), Column("best-group change", True, "best_change"),
                   Column("verdict"), Column("verdict says")])
    for c in section["comparisons"]:
        gap, utility = c["gap"], c["utility"]
        label = labels.get(c["run"], c["run"]) + (" [attribute at test]" if c["needs_attribute_at_test"] else "")
        table.rows.append([text(label), text(labels.get(c["plain_run"], c["plain_run"])), text(c["protect"]),
                           text(gap), figure_cell(Estimate.of(c["gap_plain"]), gap),
                           figure_cell(Estimate.of(c["gap_mitigated"]), gap), _signed(c["gap_change"], gap),
                           text(utility), figure_cell(Estimate.of(c["worst_plain"]), utility),
                           figure_cell(Estimate.of(c["worst_mitigated"]), utility),
                           _signed(c["worst_change"], utility), _signed(c["best_change"], utility),
                           text(c["verdict"]), text(c["meaning"])])
    return table


def encoding_table(data: ReportData) -> Table | None:
    from benchmark.leaderboard.probes import NOTE

    section = data.probes
    if not section["encoders"]:
        return None
    attributes = section["attributes"]
    table = Table("encoding", "Demographic encoding of each encoder",
                  _sentence(NOTE.partition(": ")[2]) + "; the newest probe of each attribute on the store the encoder's "
                  "runs were fitted on.",
                  [Column("encoder"), Column("store"), Column("dataset")]
                  + [Column(f"{attribute} AUC", True, f"{attribute}_auc") for attribute in attributes])
    for item in section["encoders"]:
        probes = [item["probes"].get(attribute) for attribute in attributes]
        datasets = sorted({probe["dataset"] for probe in probes if probe and probe.get("dataset")})
        table.rows.append([text(item["encoder"]), text(item["store"][:12]), text(", ".join(datasets))]
                          + [figure_cell(Estimate.of(probe["auc"] if probe else None), "auc") for probe in probes])
    return table


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
