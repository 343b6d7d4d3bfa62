"""`--executor slurm` (and `submitit-local`): each job becomes a submitit job.

On Slurm every job is submitted at once, with the resources its stage asks for in the experiment file and
`--dependency=afterok:...` on the jobs it needs (a job whose dependency failed is cancelled by Slurm,
`kill-on-invalid-dep`); `bench run` then returns (or, with `--wait`, follows the jobs to the end). A job with
several GPUs runs under torchrun inside its allocation (`worker.submitit_job`). Job states and logs land in the
experiment folder (shared with the cluster); `submitted.json` maps job ids to Slurm job ids for
`bench run --status`, and a later `bench run` follows the jobs still queued instead of submitting them again. `submitit-local` runs the same pickled jobs with submitit's local executor, on this
machine, submitting each job when the jobs it needs are through (it knows no dependencies): the offline test of
the Slurm path.
"""

from __future__ import annotations

import time

from benchmark.core.atomic import write_json
from benchmark.experiments.folder import now
from benchmark.experiments.plan import Job
from benchmark.experiments.tracker import SATISFIED, Tracker

POLL_S = {"slurm": 10.0, "local": 0.2}
QUEUED_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED")


def slurm_parameters(job: Job, after: list[str]) -> dict:
    """submitit's parameters for one job: its stage's resources, its name, its dependencies."""
    resources = job.resources
    extra = {**resources.slurm, "kill-on-invalid-dep": "yes"}
    params = {
        "name": f"bench-{job.id.replace('/', '-')}", "timeout_min": resources.time_min, "nodes": 1,
        "tasks_per_node": 1, "gpus_per_node": job.gpus, "cpus_per_task": resources.cpus, "mem_gb": resources.mem_gb,
        "slurm_partition": resources.partition, "slurm_account": resources.account,
        "slurm_additional_parameters": extra,
    }
    if after:
        params["slurm_dependency"] = "afterok:" + ":".join(after)
    return {key: value for key, value in params.items() if value is not None}


class SubmititExecutor:
    def __init__(self, tracker: Tracker, *, cluster: str, view, wait: bool = True):
        import submitit

        self.tracker, self.cluster, self.view = tracker, cluster, view
        self.wait = wait or cluster != "slurm"
        self.folder = tracker.ctx.folder
        self.executor = submitit.AutoExecutor(folder=self.folder.submitit_dir, cluster=cluster)
        self.jobs: dict[str, object] = {}  # job id -> submitit job
        self.slots = max(len(tracker.plan), 1) if cluster == "slurm" else 1
        if cluster == "slurm":
            self._adopt_queued()

    def _adopt_queued(self) -> None:
        """Jobs an earlier `bench run` submitted that are still queued or running are followed, not resubmitted."""
        from submitit.slurm.slurm import SlurmJob

        for job_id, entry in self._submitted().items():
            state = self.folder.state(job_id)
            if job_id not in self.tracker.plan.by_id or entry.get("cluster") != "slurm" or (
                    state is not None and state.state in ("done", "cached", "failed")):
                continue
            queued = SlurmJob(self.folder.submitit_dir, entry["job_id"])
            try:
                alive = queued.state in QUEUED_STATES
            except Exception:  # noqa: BLE001 - no sacct: assume it ended
                alive = False
            if alive:
                self.jobs[job_id] = queued
                self.tracker.start(job_id)

    def run(self) -> None:
        while not self.tracker.finished():
            progressed = self._submit_ready() | self._collect()
            self.view.refresh(self.tracker, self.slots)
            if not self.wait and all(self.tracker[job.id].state != "pending" for job in self.tracker.plan.jobs):
                return
            if not progressed:
                time.sleep(POLL_S[self.cluster])

    def _submittable(self, job: Job) -> bool:
        states = [self.tracker[dep].state for dep in job.deps]
        if self.cluster == "slurm":
            return all(state in SATISFIED or state == "running" for state in states)
        return all(state in SATISFIED for state in states)

    def _submit_ready(self) -> bool:
        progressed = False
        for job in self.tracker.plan.jobs:
            if self.tracker[job.id].state != "pending" or not self._submittable(job):
                continue
            through = all(self.tracker[dep].state in SATISFIED for dep in job.deps)
            if through and self.tracker.decide(job) != "run":  # only a job whose inputs exist can be checked
                self.view.event(job, self.tracker[job.id])
                progressed = True
                continue
            self._submit(job)
            progressed = True
        return progressed

    def _submit(self, job: Job) -> None:
        from benchmark.experiments.worker import submitit_job

        after = [self.jobs[dep].job_id for dep in job.deps if dep in self.jobs
                 and self.tracker[dep].state == "running"]
        self.executor.update_parameters(**slurm_parameters(job, after))
        submitted = self.executor.submit(submitit_job, job, str(self.tracker.ctx.workdir), self.tracker.plan.experiment)
        self.jobs[job.id] = submitted
        self.tracker.start(job.id)
        self.view.event(job, self.tracker[job.id])
        record = self._submitted()
        record[job.id] = {"job_id": str(submitted.job_id), "cluster": self.cluster, "submitted": now()}
        write_json(self.folder.submitted_path, record)

    def _submitted(self) -> dict:
        import json

        path = self.folder.submitted_path
        return json.loads(path.read_text()) if path.is_file() else {}

    def _collect(self) -> bool:
        progressed = False
        for job_id, submitted in self.jobs.items():
            if self.tracker[job_id].state != "running" or not submitted.done():
                continue
            state = self.folder.state(job_id)
            if state is not None and state.state == "done":
                self.tracker.finish(job_id, "done")
            elif any(self.tracker[dep].state in ("failed", "blocked") for dep in self.tracker.plan.by_id[job_id].deps):
                self.tracker.finish(job_id, "blocked", "a job it needs failed (Slurm cancelled it)")
            else:
                error = state.error if state is not None and state.error else (
                    f"the submitit job {submitted.job_id} ended without a result; see {self.folder.submitit_dir}")
                if state is None or state.state != "failed":
                    self.folder.mark(job_id, "failed", self.tracker.plan.by_id[job_id].digest, finished=now(),
                                     error=error)
                self.tracker.finish(job_id, "failed", error)
            self.tracker.ctx.forget()
            self.view.event(self.tracker.plan.by_id[job_id], self.tracker[job_id])
            progressed = True
        return progressed
