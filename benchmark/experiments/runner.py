"""`bench run`: drive a plan to its end with an executor, then say what happened.

    code = run_experiment(experiment, workdir, executor="local", jobs=2)

The experiment folder is locked while a run drives it; the resolved plan, the experiment file and the exact
package versions are written there first. Each job is asked, when its dependencies are through, whether its
result already exists (then it is skipped); a job that fails blocks only its dependents. The exit code is 0
when every job is done or cached, 1 when any failed or was blocked, 130 when interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from benchmark.core.errors import BenchError
from benchmark.core.identity import plain
from benchmark.core.workdir import Workdir
from benchmark.experiments.folder import ExperimentFolder
from benchmark.experiments.live import LiveView, clock, counts_text
from benchmark.experiments.plan import Plan, expand
from benchmark.experiments.schema import EXECUTORS
from benchmark.experiments.spec import Experiment
from benchmark.experiments.stages import Context
from benchmark.experiments.tracker import Tracker

def plan_of(experiment: Experiment, executor: str) -> Plan:
    if executor not in EXECUTORS:
        raise BenchError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    return expand(experiment, distributed=executor != "local")


def run_experiment(experiment: Experiment, workdir, *, executor: str = "local", jobs: int = 1,
                   retry_failed: bool = False, live: bool = True, wait: bool = True,
                   console: Console | None = None) -> int:
    from benchmark.ui import console as terminal

    console = console or terminal
    workdir = Workdir.of(workdir)
    plan = plan_of(experiment, executor)
    _check_roots(experiment)
    _check_slurm(executor)
    gpus = _gpus_for(plan) if executor == "local" else []
    folder = ExperimentFolder(workdir, experiment.name)
    with folder.lock():
        folder.write_plan({**plan.to_json(), "source": str(experiment.source), "spec": plain(experiment)},
                          experiment.source)
        tracker = Tracker(plan, Context(workdir, folder), retry_failed=retry_failed)
        title = f"bench run {experiment.name}"
        with LiveView(console, title, live=live) as view:
            if executor == "local":
                from benchmark.experiments.local import LocalExecutor

                runner = LocalExecutor(tracker, jobs=jobs, gpus=gpus, view=view)
            else:
                from benchmark.experiments.submit import SubmititExecutor

                runner = SubmititExecutor(tracker, cluster="local" if executor == "submitit-local" else "slurm",
                                          view=view, wait=wait)
            try:
                runner.run()
            finally:
                view.refresh(tracker, runner.slots, force=True)
    if not tracker.finished():  # Slurm, not waiting: the jobs go on in the queue
        console.print(f"submitted: {counts_text(tracker)}; follow it with `bench run {escape(str(experiment.source))} --status`",
                      highlight=False)
        return 0
    return summarise(tracker, folder, console)


def _check_slurm(executor: str) -> None:
    """Refuse `--executor slurm`, before anything is written, where Slurm's commands are not on PATH."""
    import shutil

    missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if executor == "slurm" and missing:
        raise BenchError(f"--executor slurm: no Slurm here ({' and '.join(missing)} not found on PATH); run it on the "
                         "cluster's login node, or use --executor local (submitit-local tries the Slurm path on this "
                         "machine); nothing was written")


def _check_roots(experiment: Experiment) -> None:
    """Refuse, before anything runs, a dataset folder that is not there (a synthetic one is written by the plan)."""
    from benchmark.experiments.dryrun import missing_root

    for name, dataset in experiment.datasets.items():
        if dataset.adapter == "nih" and not dataset.root.is_dir():
            raise BenchError(f"{experiment.source}: datasets.{name}.root: {missing_root(dataset.root)}; nothing was run")


def _gpus_for(plan: Plan) -> list[str]:
    """The GPUs the local executor may use; BenchError when jobs need one and none is visible."""
    from benchmark.experiments.local import visible_gpus

    needing = [job for job in plan.jobs if job.gpus]
    gpus = visible_gpus() if needing else []
    if needing and not gpus:
        stages = sorted({job.stage for job in needing})
        raise BenchError(
            f"{len(needing)} jobs need a GPU ({', '.join(f'[resources.{s}] gpus' for s in stages)}), but none is "
            "visible here; set gpus = 0 there to run them on the CPU, or run with --executor slurm"
        )
    return gpus


def summarise(tracker: Tracker, folder: ExperimentFolder, console: Console) -> int:
    """Print the counts, the failed jobs with their logs, the leaderboards and the reports; return the exit code."""
    counts = tracker.counts()
    elapsed = clock(time.perf_counter() - tracker.started)
    console.print(f"[bold]{folder.name}[/]: {len(tracker.plan)} jobs in {elapsed} · ", counts_text(tracker),
                  highlight=False)
    for job in tracker.plan.jobs:
        run = tracker[job.id]
        if run.state == "failed":
            when = "failed in an earlier run (--retry-failed runs it again)" if run.earlier else "failed"
            console.print(f"  [red]{when}[/] {escape(job.id)}: {escape(run.error)}\n"
                          f"    log: {escape(str(folder.log_path(job.id)))}", highlight=False, soft_wrap=True)
    blocked = [job.id for job in tracker.plan.jobs if tracker[job.id].state == "blocked"]
    if blocked:
        console.print(f"  [yellow]blocked[/] (they need a failed job): {', '.join(blocked[:6])}"
                      + (f" and {len(blocked) - 6} more" if len(blocked) > 6 else ""), highlight=False)
    console.print(f"logs, plan and versions: {escape(str(folder.root))}", highlight=False)
    for job in tracker.plan.jobs:
        state = folder.state(job.id)
        if job.stage == "leaderboard" and tracker[job.id].state in ("done", "cached") and state is not None:
            console.print(Path(state.outputs["table"]).read_text(encoding="utf-8"), highlight=False, markup=False,
                          soft_wrap=True, end="")
    for job in tracker.plan.jobs:
        state = folder.state(job.id)
        if job.stage == "report" and tracker[job.id].state in ("done", "cached") and state is not None:
            console.print(f"report: {escape(state.outputs['html'])}", highlight=False, soft_wrap=True)
    if counts.get("interrupted"):
        return 130
    return 1 if counts.get("failed") or counts.get("blocked") else 0
