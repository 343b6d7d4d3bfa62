"""`bench run --status`: where the plan last written for an experiment stands (each job's state, its Slurm
job, its log), also while another `bench run` or the Slurm queue is still working on it."""

from __future__ import annotations

import json
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmark.experiments.folder import ExperimentFolder
from benchmark.experiments.live import STYLES
from benchmark.experiments.plan import Plan


def show_status(plan_name: str, workdir, console: Console) -> int:
    """Where the plan last written for experiment `plan_name` stands: each job's state, Slurm ids, logs."""
    folder = ExperimentFolder(workdir, plan_name)
    plan = Plan.from_json(folder.read_plan())
    submitted = json.loads(folder.submitted_path.read_text()) if folder.submitted_path.is_file() else {}
    table = Table(title=f"experiment {plan_name}: {folder.root}", title_justify="left")
    for column in ("job", "state", "finished", "took", "Slurm job", "note"):
        table.add_column(column, overflow="fold")
    counts = Counter()
    for job in plan.jobs:
        state = folder.state(job.id)
        name = state.state if state else ("submitted" if job.id in submitted else "not started")
        if name == "submitted":
            name = _queue_state(folder, submitted[job.id]) or name
        counts[name] += 1
        note = state.error if state and state.error else (str(folder.log_path(job.id)) if state else "")
        table.add_row(Text(job.id), Text(name, style=STYLES.get(name, "")), state.finished if state else "",
                      f"{state.seconds:.1f} s" if state and state.seconds else "",
                      submitted.get(job.id, {}).get("job_id", ""), Text(note))
    console.print(table)
    console.print(", ".join(f"{count} {name}" for name, count in counts.most_common())
                  + ("; a `bench run` is driving it now" if _driven(folder) else ""), highlight=False)
    return 1 if counts.get("failed") else 0


def _queue_state(folder: ExperimentFolder, entry: dict) -> str | None:
    """Slurm's word for a submitted job that has not started writing its state (None when it cannot be asked)."""
    if entry.get("cluster") != "slurm":
        return None
    try:
        from submitit.slurm.slurm import SlurmJob

        return f"Slurm: {SlurmJob(folder.submitit_dir, entry['job_id']).state}"
    except Exception:  # noqa: BLE001 - no sacct here
        return None


def _driven(folder: ExperimentFolder) -> bool:
    """True while a `bench run` holds the experiment's lock."""
    from filelock import FileLock, Timeout

    lock = FileLock(folder.root / ".run.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False
