"""`--executor local`: each job in its own process on this machine.

CPU jobs run side by side up to `--jobs N`, each with its share of the cores as threads; GPU jobs one per
visible device (`CUDA_VISIBLE_DEVICES` set to it). A job's output goes to its log file. Job processes come
from a multiprocessing fork server that has imported torch and the pipelines once (`PRELOAD`), so a job
starts in milliseconds instead of seconds; CUDA is never touched before a job's process sets its device.
They die with `bench run`: each watches its `bench run` process and ends itself within 0.2 s of it (and, on
Linux, with the fork server, `PR_SET_PDEATHSIG`), so a `kill -9` never leaves an orphan writing beside a resumed run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from benchmark.experiments.folder import now
from benchmark.experiments.plan import Job
from benchmark.experiments.tracker import Tracker

POLL_S = 0.05
PRELOAD = ["torch", "numpy", "polars", "h5py", "open_clip", "benchmark.pipelines.extract", "benchmark.pipelines.heads",
           "benchmark.pipelines.finetune", "benchmark.finetune.trainer", "heads.linear", "heads.mlp",
           "heads.seed_linear", "heads.zeroshot", "benchmark.leaderboard", "benchmark.experiments.worker"]
"""What the fork server imports once for every job (a module that cannot be imported is left out)."""


def process_context():
    """Where job processes come from: the fork server where the platform has one, else fresh interpreters."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def visible_gpus() -> list[str]:
    """Indices of the CUDA devices this process may use (respecting CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [item.strip() for item in visible.split(",") if item.strip() and item.strip() != "-1"]
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in found.stdout.splitlines() if line.strip().isdigit()] if found.returncode == 0 else []


@dataclass
class _Running:
    job: Job
    process: multiprocessing.process.BaseProcess
    device: str | None


class LocalExecutor:
    def __init__(self, tracker: Tracker, *, jobs: int, gpus: list[str], view):
        self.tracker, self.view = tracker, view
        self.cpu_slots, self.free_gpus = max(jobs, 1), list(gpus)
        self.slots = self.cpu_slots + len(gpus)
        self.running: dict[str, _Running] = {}
        self.decided: set[str] = set()
        self.processes = process_context()
        cores = os.cpu_count() or 1
        self.threads = max(1, cores // self.cpu_slots)

    def run(self) -> None:
        try:
            while not self.tracker.finished():
                progressed = self._start_ready() | self._reap()
                self.view.refresh(self.tracker, self.slots)
                if not progressed:
                    time.sleep(POLL_S)
        except KeyboardInterrupt:
            self._interrupt()
            raise

    def _start_ready(self) -> bool:
        progressed = False
        for job in self.tracker.ready():
            if job.id not in self.decided:
                self.decided.add(job.id)
                if self.tracker.decide(job) != "run":
                    self.view.event(job, self.tracker[job.id])
                    progressed = True
                    continue
            if job.gpus and self.free_gpus:
                self._start(job, self.free_gpus.pop(0))
            elif not job.gpus and self._cpu_jobs() < self.cpu_slots:
                self._start(job, None)
            else:
                continue
            progressed = True
        return progressed

    def _cpu_jobs(self) -> int:
        return sum(1 for running in self.running.values() if running.device is None)

    def _start(self, job: Job, device: str | None) -> None:
        from benchmark.experiments.worker import forked_job

        path = self.tracker.ctx.folder.log_path(job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            log.write(f"\n=== {now()} {job.id}: attempt on {'GPU ' + device if device else 'the CPU'} ===\n")
        threads = int(job.resources.cpus or os.environ.get("OMP_NUM_THREADS") or self.threads)
        process = self.processes.Process(
            target=forked_job, name=job.id, daemon=False,
            args=(str(self.tracker.ctx.workdir), self.tracker.plan.experiment, job.id, str(path), device, threads,
                  os.getpid()))
        process.start()
        self.running[job.id] = _Running(job, process, device)
        self.tracker.start(job.id)
        self.view.event(job, self.tracker[job.id])

    def _reap(self) -> bool:
        progressed = False
        for job_id, running in list(self.running.items()):
            code = running.process.exitcode
            if code is None:
                continue
            self._finished(running, code)
            progressed = True
        return progressed

    def _finished(self, running: _Running, code: int) -> None:
        job, folder = running.job, self.tracker.ctx.folder
        running.process.join()
        del self.running[job.id]
        if running.device is not None:
            self.free_gpus.append(running.device)
        state = folder.state(job.id)
        if code == 0 and state is not None and state.state == "done":
            self.tracker.finish(job.id, "done")
        elif state is not None and state.state == "interrupted":
            self.tracker.finish(job.id, "interrupted", "interrupted (Ctrl-C); the next run resumes it")
        else:
            error = state.error if state is not None and state.state == "failed" else _exit_reason(code)
            if state is None or state.state != "failed":
                folder.mark(job.id, "failed", job.digest, finished=now(), error=error)
            self.tracker.finish(job.id, "failed", error)
        self.tracker.ctx.forget()  # the job changed the workdir: read it afresh
        self.view.event(job, self.tracker[job.id])

    def _interrupt(self) -> None:
        """Ctrl-C: the children got SIGINT too; give them a moment to record it, then stop them."""
        deadline = time.monotonic() + 10
        for running in self.running.values():
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(running.process.pid, signal.SIGINT)
        for running in list(self.running.values()):
            running.process.join(timeout=max(deadline - time.monotonic(), 0.1))
            if running.process.exitcode is None:
                running.process.kill()
                running.process.join()
            state = self.tracker.ctx.folder.state(running.job.id)
            if state is None or state.state == "running":
                self.tracker.ctx.folder.mark(running.job.id, "interrupted", running.job.digest, finished=now())
            self.tracker.finish(running.job.id, "interrupted")


def _exit_reason(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"the job's process was killed by {name}"
    return f"the job's process exited with code {code}"
