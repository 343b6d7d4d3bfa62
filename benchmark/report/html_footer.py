"""The page's provenance footer: the command line, the evaluation's settings, the datasets (manifest digests,
synthetic or not), task parameters, seeds, every run's encoder, method, seed and weights digest (or "random
weights"), and the package versions."""

from __future__ import annotations

import json

from benchmark.report.html import esc

RANKING_KEYS = ("rank_by", "tie_break", "correction", "alpha", "family_size", "n_boot", "n_perm", "confidence", "seed",
                "permutation", "worst_group_over", "min_group_size", "min_positives", "reweighted")
RUN_COLUMNS = ("name", "label", "encoder", "method", "seed", "weights", "dataset", "manifest", "task", "experiment", "created")


def _row(cells) -> str:
    return "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in cells) + "</tr>"


def _table(header, rows, ident: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return (f'<div class="scroll"><table id="{ident}"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(_row(r) for r in rows) + "</tbody></table></div>")


def _run_rows(provenance: dict, labels: dict) -> list:
    rows = []
    for run in provenance.get("runs", []):
        dataset = run.get("dataset") or "—"
        if run.get("test_dataset"):
            dataset += f" → {run['test_dataset']}"
        rows.append([run["name"], labels.get(run["name"], ""), run["encoder"], run["method"], "" if run["seed"] is None else run["seed"],
                     run["weights"], dataset, (run.get("manifest_digest") or "—")[:16], run.get("task") or "—",
                     run.get("experiment") or "—", run.get("created") or "—"])
    return rows


def _datasets(provenance: dict) -> str:
    datasets = provenance.get("datasets") or {}
    if not datasets:
        return "<p>Datasets: not recorded (outside prediction files).</p>"
    rows = [[name, "SYNTHETIC (generated phantoms)" if row["synthetic"] else "as registered", row.get("root") or "—",
             row.get("digest") or "—", row.get("rows") or "—"] for name, row in datasets.items()]
    return _table(["dataset", "data", "root", "manifest digest", "images"], rows, "provenance-datasets")


def footer(data) -> str:
    provenance = data.provenance
    ranking = data.ranking
    settings = "; ".join(f"{key} = {json.dumps(ranking[key])}" for key in RANKING_KEYS if key in ranking)
    versions = ", ".join(f"{name} {version}" for name, version in (provenance.get("versions") or {}).items())
    params = "; ".join(json.dumps(p, sort_keys=True) for p in provenance.get("task_params") or []) or "—"
    seeds = ", ".join(str(s) for s in provenance.get("seeds") or []) or "—"
    report_options = json.dumps(provenance.get("options") or {}, sort_keys=True)
    return "\n".join([
        '<footer id="provenance"><h2>Provenance</h2>',
        f'<p>Command: <code id="command-line">{esc(provenance.get("command") or "—")}</code></p>',
        f'<p>Made {esc(provenance.get("created") or "—")}; workdir {esc(provenance.get("workdir") or "—")}.</p>',
        f"<p>Evaluation (one, by the leaderboard): {esc(settings)}.</p>",
        f"<p>Report options: {esc(report_options)}.</p>",
        f"<p>Task parameters: {esc(params)}. Training seeds: {esc(seeds)}. Encoders: "
        f"{esc(', '.join(provenance.get('encoders') or []) or '—')}.</p>",
        _datasets(provenance),
        "<h3>Runs</h3>", _table(RUN_COLUMNS, _run_rows(provenance, {r.name: r.label for r in data.runs}), "provenance-runs"),
        f"<p>Package versions: {esc(versions or '—')}.</p>",
        "</footer>",
    ])
