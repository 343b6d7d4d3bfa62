"""An experiment's folder in the workdir, `experiments/<name>/`, and the state of each of its jobs.

    plan.json                 the resolved plan: the experiment, every job with its dependencies and inputs
    experiment.toml           the file as it was read
    versions.json             the exact version of every installed package, Python and the platform
    jobs/<job-id>.json        each job's last state (running, done, cached, failed, interrupted), times, outputs
    logs/<job-id>.log         each job's output, attempt after attempt
    runs/<task>.json          the runs of a task the plan made or reused (what `--experiment` selects)
    leaderboard/<task>.*      the leaderboard stage's table (txt, md, json) and what it ranked
    submitit/, submitted.json Slurm: submitit's scripts, pickles and logs; job id -> Slurm job id
    memo/                     what heads record as hyperparameters, so that a cache check needs no torch
    .run.lock                 held by the `bench run` that drives the plan

Every file is written atomically (`benchmark.core.atomic`): a kill leaves the old state or the new one.
A job's state is the runner's memory, not the truth about results: whether a result exists is always asked
of the stage (its store, its runs), so a state file can never make a missing result look done.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.core.atomic import write_json, write_text
from benchmark.core.errors import BenchError
from benchmark.core.workdir import Workdir

STATES = ("running", "done", "cached", "failed", "interrupted")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class JobState:
    """What the runner remembers of one job (the latest attempt)."""

    state: str
    digest: str  # the job's inputs: a failure is remembered for these inputs only
    started: str = ""
    finished: str = ""
    seconds: float | None = None
    outputs: dict = field(default_factory=dict)
    error: str = ""
    pid: int | None = None
    host: str = ""

    @classmethod
    def from_json(cls, values: dict) -> "JobState":
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in values.items() if key in names})


class ExperimentFolder:
    """The folder of experiment `name` in `workdir` (nothing is created by asking)."""

    def __init__(self, workdir, name: str):
        self.workdir = Workdir.of(workdir)
        self.name = name
        self.root = self.workdir.experiment_dir(name)

    plan_path = property(lambda self: self.root / "plan.json")
    versions_path = property(lambda self: self.root / "versions.json")
    source_copy = property(lambda self: self.root / "experiment.toml")
    submitit_dir = property(lambda self: self.root / "submitit")
    submitted_path = property(lambda self: self.root / "submitted.json")
    memo_dir = property(lambda self: self.root / "memo")
    leaderboard_dir = property(lambda self: self.root / "leaderboard")

    def state_path(self, job_id: str) -> Path:
        return self.root / "jobs" / f"{job_id}.json"

    def log_path(self, job_id: str) -> Path:
        return self.root / "logs" / f"{job_id}.log"

    def state(self, job_id: str) -> JobState | None:
        path = self.state_path(job_id)
        try:
            return JobState.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # unreadable: as if never run (the stage decides what exists)

    def write_state(self, job_id: str, state: JobState) -> None:
        write_json(self.state_path(job_id), asdict(state))

    def mark(self, job_id: str, state: str, digest: str, **fields) -> JobState:
        """Write and return a new state for a job (`pid` and `host` of this process filled in)."""
        record = JobState(state=state, digest=digest, pid=os.getpid(), host=socket.gethostname(), **fields)
        self.write_state(job_id, record)
        return record

    def write_plan(self, plan_json: dict, source: Path) -> None:
        from benchmark.core.versions import installed_versions

        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.plan_path, plan_json)
        write_json(self.versions_path, installed_versions())
        write_text(self.source_copy, Path(source).read_text(encoding="utf-8"))

    def read_plan(self) -> dict:
        if not self.plan_path.is_file():
            raise BenchError(f"no plan in {self.root}: run `bench run EXPERIMENT.toml` first")
        return json.loads(self.plan_path.read_text())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a `bench run` drives this experiment; a second one stops with a clear message."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.root / ".run.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise BenchError(
                f"another `bench run` is driving experiment {self.name!r} (lock {self.root / '.run.lock'}); "
                "wait for it, or see where it stands with `bench run --status`"
            ) from None
        try:
            yield
        finally:
            lock.release()
