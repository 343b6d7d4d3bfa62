"""`bench run --dry-run`: the plan without running it.

Every job with what would happen to it (cached: its result exists; to run; failed earlier), whether
it needs a GPU and a rough GPU time (`benchmark.experiments.estimate`), and notes (a dataset folder that is not
there, weights that are not found). It writes nothing.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmark.core.workdir import Workdir
from benchmark.experiments import estimate
from benchmark.experiments.folder import ExperimentFolder
from benchmark.experiments.live import STYLES, clock
from benchmark.experiments.plan import Plan
from benchmark.experiments.stages import Context, stage

LIST_UP_TO = 60


def predict(plan: Plan, ctx: Context) -> dict[str, str]:
    """job id -> "cached", "to run" or "failed earlier", without writing anything."""
    verdicts: dict[str, str] = {}
    for job in plan.jobs:
        verdict = "to run"
        if all(verdicts[dep] == "cached" for dep in job.deps):
            try:
                verdict = "cached" if stage(job.stage).check(job, ctx) is not None else "to run"
            except Exception:  # noqa: BLE001 - cannot tell: it will run and say why
                verdict = "to run"
        previous = ctx.folder.state(job.id)
        if verdict == "to run" and previous and previous.state == "failed" and previous.digest == job.digest:
            verdict = "failed earlier"
        verdicts[job.id] = verdict
    return verdicts


def missing_root(root) -> str:
    from benchmark.experiments.schema import unset_variables

    unset = unset_variables(root)
    if unset:
        return f"{root}: set {', '.join('$' + name for name in unset)} (export {unset[0]}=/path/to/the/folder)"
    return f"folder not found: {root}"


def notes(job, ctx: Context) -> str:
    if job.stage == "dataset":
        from benchmark.experiments.stages.dataset import dataset_root

        root = dataset_root(job.payload, ctx.workdir)
        if job.payload["synthetic"]:
            return "" if root.exists() else f"will be synthesised in {root}"
        return "" if root.is_dir() else missing_root(root)
    if job.stage in ("extract", "finetune"):
        from benchmark.pipelines.extract import expected_weights_digest

        if expected_weights_digest(job.payload["model"], job.payload["weights"]) is None:
            return "weights not found (`bench models` says where to put them)"
    return ""


def dry_run(plan: Plan, workdir, console: Console) -> int:
    ctx = Context(Workdir.of(workdir), ExperimentFolder(workdir, plan.experiment))
    verdicts = predict(plan, ctx)
    rows, gpu_total, unknown, sources = [], 0.0, 0, set()
    for job in plan.jobs:
        seconds, source = estimate.gpu_seconds(job, plan, ctx) if verdicts[job.id] != "cached" else (0.0, "")
        if seconds is None:
            unknown += 1
        else:
            gpu_total += seconds
        sources.add(source)
        rows.append((job, verdicts[job.id], seconds, notes(job, ctx)))
    _print_jobs(rows, console)
    _print_totals(plan, verdicts, gpu_total, unknown, sources, console)
    return 0


def _print_jobs(rows: list, console: Console) -> None:
    shown = [row for row in rows if row[1] != "cached"] if len(rows) > LIST_UP_TO else rows
    table = Table(title="the plan (nothing runs with --dry-run)", title_justify="left")
    for column in ("job", "will be", "GPU", "GPU time", "note"):
        table.add_column(column, overflow="fold", no_wrap=column in ("will be", "GPU"))
    for job, verdict, seconds, note in shown[:LIST_UP_TO]:
        gpu = f"{job.gpus}" + (f" ({job.processes} proc)" if job.processes > 1 else "") if job.gpus else "—"
        time_text = "" if not job.gpus else ("?" if seconds is None else clock(seconds))
        table.add_row(Text(job.id), Text(verdict, style=STYLES[_state(verdict)]), gpu, time_text, Text(note))
    console.print(table)
    if len(shown) > LIST_UP_TO:
        console.print(f"… and {len(shown) - LIST_UP_TO} more jobs to run", style="dim")


def _state(verdict: str) -> str:
    return {"cached": "cached", "to run": "pending", "failed earlier": "failed"}[verdict]


def _print_totals(plan, verdicts, gpu_total, unknown, sources, console) -> None:
    by_stage = Counter((job.stage, verdicts[job.id]) for job in plan.jobs)
    stages = list(dict.fromkeys(job.stage for job in plan.jobs))
    parts = []
    for name in stages:
        cached, run = by_stage[(name, "cached")], len([j for j in plan.jobs if j.stage == name]) - by_stage[(name, "cached")]
        parts.append(f"{name} {run} to run" + (f", {cached} cached" if cached else ""))
    gpu_jobs = sum(1 for job in plan.jobs if job.gpus and verdicts[job.id] != "cached")
    console.print(f"{len(plan)} jobs: " + "; ".join(parts), highlight=False)
    if gpu_jobs:
        source = "measured here" if sources == {"measured"} else estimate.REFERENCE_NOTE if "reference" in sources else ""
        console.print(f"GPU: {gpu_jobs} jobs, about {clock(gpu_total)} of GPU time"
                      + (f" (+ {unknown} jobs of unknown time)" if unknown else "") + f"; {source}", highlight=False)
    else:
        console.print("GPU: none needed (every job runs on the CPU)", highlight=False)
