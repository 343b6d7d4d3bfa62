"""report/<task>: the figures, tables and page of the task's leaderboard (`bench report --experiment NAME`),
drawn from the report data the leaderboard job wrote (`leaderboard/<task>.report.json`: the one evaluation,
nothing resampled again), into the experiment's `report/<task>/`. Done when that folder's page was drawn from
this data with these options (`report/<task>.identity.json`)."""

from __future__ import annotations

import hashlib
import json

from benchmark.core.atomic import write_json
from benchmark.core.identity import digest
from benchmark.experiments.stages.leaderboard import report_data_path


def _paths(job, ctx) -> dict:
    task = job.payload["task"]
    folder = ctx.folder.root / "report"
    return {"data": report_data_path(ctx, task), "out": folder / task, "page": folder / task / "report.html",
            "identity": folder / f"{task}.identity.json"}


def _identity(job, paths) -> str | None:
    from benchmark.report.data import DATA_VERSION

    if not paths["data"].is_file():
        return None
    data_digest = hashlib.sha256(paths["data"].read_bytes()).hexdigest()
    return digest({"data": data_digest, "options": job.payload["options"], "version": DATA_VERSION})


def check(job, ctx) -> dict | None:
    paths = _paths(job, ctx)
    if not (paths["page"].is_file() and paths["identity"].is_file()):
        return None
    identity = _identity(job, paths)
    if identity is None or json.loads(paths["identity"].read_text()).get("identity") != identity:
        return None
    return {"html": str(paths["page"])}


def run(job, ctx) -> dict:
    from benchmark.report import ReportOptions, write_report

    paths = _paths(job, ctx)
    options = dict(job.payload["options"])
    if "formats" in options:
        options["formats"] = tuple(options["formats"])
    document = json.loads(paths["data"].read_text())
    result = write_report(document, paths["out"], ReportOptions(**options), progress=ctx.progress)
    write_json(paths["identity"], {"identity": _identity(job, paths)})
    print(f"report: {result.page}")
    return {"html": str(result.page)}
