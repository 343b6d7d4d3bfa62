"""The states of a plan's jobs during one `bench run`, and the decision to run, skip or hold back each job.

    pending -> cached                      its result exists (the stage's identity check), nothing to do
    pending -> failed (earlier)            it failed before with the same inputs (`--retry-failed` runs it again)
    pending -> running -> done | failed    it ran
    pending -> blocked                     a job it depends on failed
    running -> interrupted                 the run was stopped (Ctrl-C)

A failed job blocks only the jobs that depend on it: the rest of the plan goes on.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from benchmark.experiments.folder import now
from benchmark.experiments.plan import Job, Plan
from benchmark.experiments.stages import Context, stage

FINAL = ("done", "cached", "failed", "blocked", "interrupted")
SATISFIED = ("done", "cached")


@dataclass
class JobRun:
    """One job in this `bench run`."""

    state: str = "pending"
    started: float | None = None
    finished: float | None = None
    error: str = ""
    earlier: bool = False  # failed in an earlier run (not retried)
    expected_s: float | None = None  # how long it took last time, if it ran before

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.perf_counter()) - self.started


class Tracker:
    def __init__(self, plan: Plan, ctx: Context, *, retry_failed: bool = False):
        self.plan, self.ctx, self.retry_failed = plan, ctx, retry_failed
        self.jobs = {job.id: JobRun() for job in plan.jobs}
        self.started = time.perf_counter()
        for job in plan.jobs:
            previous = ctx.folder.state(job.id)
            if previous is not None and previous.seconds:
                self.jobs[job.id].expected_s = previous.seconds

    def __getitem__(self, job_id: str) -> JobRun:
        return self.jobs[job_id]

    def counts(self) -> Counter:
        return Counter(run.state for run in self.jobs.values())

    def finished(self) -> bool:
        return all(run.state in FINAL for run in self.jobs.values())

    def ready(self) -> list[Job]:
        """Pending jobs whose dependencies are all done or cached, in plan order."""
        return [job for job in self.plan.jobs if self.jobs[job.id].state == "pending"
                and all(self.jobs[dep].state in SATISFIED for dep in job.deps)]

    def decide(self, job: Job) -> str:
        """"cached", "failed" (earlier, same inputs) or "run"; records the first two."""
        folder = self.ctx.folder
        try:
            outputs = stage(job.stage).check(job, self.ctx)
        except Exception:  # noqa: BLE001 - a check that cannot decide means: run the job, which then says why
            outputs = None
        previous = folder.state(job.id)
        if outputs is not None:
            took = previous.seconds if previous is not None else None  # kept for the next run's ETA
            folder.mark(job.id, "cached", job.digest, finished=now(), outputs=outputs, seconds=took)
            self.finish(job.id, "cached")
            return "cached"
        if (previous is not None and previous.state == "failed" and previous.digest == job.digest
                and not self.retry_failed):
            self.jobs[job.id].earlier = True
            self.finish(job.id, "failed", previous.error)
            return "failed"
        return "run"

    def start(self, job_id: str) -> None:
        run = self.jobs[job_id]
        run.state, run.started = "running", time.perf_counter()

    def finish(self, job_id: str, state: str, error: str = "") -> None:
        run = self.jobs[job_id]
        run.state, run.error = state, error
        run.finished = time.perf_counter()
        if state in ("failed", "blocked", "interrupted"):
            self._block(job_id)

    def _block(self, job_id: str) -> None:
        for dependent in self.plan.dependents[job_id]:
            run = self.jobs[dependent]
            if run.state == "pending":
                run.state, run.error = "blocked", f"needs {job_id}, which did not finish"
                self._block(dependent)

    def stage_means(self) -> dict[str, float]:
        """Mean seconds of the jobs of each stage done in this run."""
        times: dict[str, list[float]] = {}
        for job in self.plan.jobs:
            run = self.jobs[job.id]
            if run.state == "done" and run.elapsed:
                times.setdefault(job.stage, []).append(run.elapsed)
        return {name: sum(values) / len(values) for name, values in times.items()}

    def eta(self, slots: int) -> float | None:
        """Seconds until the plan is through: each remaining job's last duration, else the mean of its stage in
        this run (None while a remaining job has neither)."""
        means, remaining = self.stage_means(), 0.0
        for job in self.plan.jobs:
            run = self.jobs[job.id]
            if run.state in FINAL:
                continue
            expected = run.expected_s or means.get(job.stage)
            if expected is None:
                return None
            remaining += max(expected - (run.elapsed or 0.0), 0.0)
        return remaining / max(slots, 1)
