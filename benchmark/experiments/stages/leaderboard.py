"""leaderboard/<task>: rank the runs the plan made or reused for the task (`bench leaderboard --task T
--experiment NAME`). It lists them in `runs/<task>.json` (what `--experiment` selects) and writes the table
as text, Markdown and JSON under `leaderboard/`, and the report's data from the same evaluation
(`<task>.report.json`, `benchmark.report.collect`: the report job draws from it without evaluating again).
Done when those files rank exactly these runs with these options."""

from __future__ import annotations

import io
import json

from benchmark.core.atomic import write_json, write_text
from benchmark.core.identity import digest

TABLE_WIDTH = 160
"""Columns of the saved text table (the terminal's width is unknown when a job runs in the background)."""


def members(job, ctx) -> list[dict]:
    """The runs of this task that the leaderboard's dependencies made or reused, in plan order."""
    runs = []
    for dep in job.deps:
        state = ctx.folder.state(dep)
        runs.extend((state.outputs.get("runs") or {}).values() if state else ())
    return runs


def _paths(job, ctx) -> dict:
    folder, task = ctx.folder.leaderboard_dir, job.payload["task"]
    return {kind: folder / f"{task}.{kind}" for kind in ("txt", "md", "json")} | {
        "identity": folder / f"{task}.identity.json", "report": report_data_path(ctx, task)}


def report_data_path(ctx, task: str):
    return ctx.folder.leaderboard_dir / f"{task}.report.json"


def _identity(job, runs: list[dict]) -> str:
    return digest({"runs": sorted(run["run_id"] for run in runs), "options": job.payload["options"]})


def check(job, ctx) -> dict | None:
    paths = _paths(job, ctx)
    if not all(path.is_file() for path in paths.values()):
        return None
    stored = json.loads(paths["identity"].read_text())
    if stored.get("identity") != _identity(job, members(job, ctx)):
        return None
    return {"table": str(paths["txt"]), "json": str(paths["json"])}


def run(job, ctx) -> dict:
    from rich.console import Console

    import benchmark.leaderboard as leaderboard
    from benchmark.leaderboard.options import evaluation_options
    from benchmark.report.data import report_document

    payload, runs = job.payload, members(job, ctx)
    task, options = payload["task"], evaluation_options(payload["options"])
    write_json(ctx.workdir.experiment_runs_path(payload["experiment"], task), {"task": task, "runs": runs})
    ranked_runs = leaderboard.load_task_runs(ctx.workdir, task, experiment=payload["experiment"])
    board = leaderboard.build(ranked_runs, block=task, **options)
    for note in board.notes:
        ctx.progress.note(f"note: {note}")
    title = f"leaderboard: {task} (experiment {payload['experiment']})"
    paths = _paths(job, ctx)
    write_text(paths["md"], leaderboard.render([board], fmt="md", title=title))
    write_text(paths["json"], leaderboard.render([board], fmt="json", title=title))
    recorder = Console(record=True, width=TABLE_WIDTH, file=io.StringIO())
    leaderboard.render([board], fmt="table", title=title, console=recorder)
    table = recorder.export_text()
    write_text(paths["txt"], table)
    print(table)
    command = f"bench run {ctx.folder.source_copy} (experiment {payload['experiment']})"
    document = report_document(board, ranked_runs, workdir=ctx.workdir, command=command, title=f"cxr-fairbench report: {task} (experiment {payload['experiment']})")
    write_text(paths["report"], json.dumps(document))
    write_json(paths["identity"], {"identity": _identity(job, runs), "runs": runs})
    return {"table": str(paths["txt"]), "json": str(paths["json"])}
