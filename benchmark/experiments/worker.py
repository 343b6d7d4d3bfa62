"""Run one job of a plan: the one function every executor calls.

    python -m benchmark.experiments.worker WORKDIR EXPERIMENT JOB_ID     (the local executor; torchrun)
    submitit_job(job, workdir, experiment)                               (the Slurm executor, pickled)

The job's state goes to `jobs/<job-id>.json` in the experiment folder (running, then done with its outputs,
or failed with the error, or interrupted); its output goes to `logs/<job-id>.log`. Under torchrun only rank 0
writes the state.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback

from benchmark.core.distributed import environment_rank
from benchmark.core.errors import BenchError
from benchmark.core.workdir import Workdir
from benchmark.experiments.folder import ExperimentFolder, now
from benchmark.experiments.plan import Job, Plan
from benchmark.experiments.stages import Context, stage


def run_job(job: Job, workdir, experiment: str) -> dict:
    """Run `job` in this process and record its state; returns its outputs (raises what the stage raised)."""
    from benchmark.ui import RichProgress

    folder = ExperimentFolder(workdir, experiment)
    ctx = Context(Workdir.of(workdir), folder, RichProgress(enabled=False))
    main = environment_rank() == 0
    started, started_at = time.perf_counter(), now()
    if main:
        folder.mark(job.id, "running", job.digest, started=started_at)
    print(f"{started_at} {job.id}: started (pid {os.getpid()})", flush=True)
    try:
        outputs = stage(job.stage).run(job, ctx)
    except KeyboardInterrupt:
        if main:
            folder.mark(job.id, "interrupted", job.digest, started=started_at, finished=now())
        raise
    except BaseException as error:
        message = str(error) if isinstance(error, BenchError) else f"{type(error).__name__}: {error}"
        if main:
            folder.mark(job.id, "failed", job.digest, started=started_at, finished=now(),
                        seconds=round(time.perf_counter() - started, 3), error=message.splitlines()[0][:500])
        raise
    seconds = round(time.perf_counter() - started, 3)
    if main:
        folder.mark(job.id, "done", job.digest, started=started_at, finished=now(), seconds=seconds, outputs=outputs)
    print(f"{now()} {job.id}: done in {seconds:.1f} s", flush=True)
    return outputs


def load_job(workdir, experiment: str, job_id: str) -> Job:
    plan = Plan.from_json(ExperimentFolder(workdir, experiment).read_plan())
    if job_id not in plan.by_id:
        raise BenchError(f"no job {job_id!r} in the plan of experiment {experiment!r}")
    return plan.by_id[job_id]


def submitit_job(job: Job, workdir: str, experiment: str) -> dict:
    """A Slurm job (through submitit): output appended to the job's log in the experiment folder; a job with
    several GPUs runs under torchrun, one process per GPU."""
    folder = ExperimentFolder(workdir, experiment)
    log = folder.log_path(job.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as handle:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        if job.processes <= 1:
            return run_job(job, workdir, experiment)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={job.processes}", "-m", __name__, str(workdir), experiment, job.id]
        code = subprocess.call(command)
        state = folder.state(job.id)
        if code != 0 or state is None or state.state != "done":
            raise RuntimeError(f"{job.id} failed under torchrun (exit code {code}); see {log}")
        return state.outputs


LOG_COLUMNS = "160"
"""Width of rich output in job logs (no terminal there)."""


def die_with_parent() -> None:
    """Get SIGKILL when the parent process dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def exit_when_gone(owner: int, every_s: float = 0.2) -> None:
    """End this process (SIGKILL) as soon as process `owner` is gone: a job's `bench run`. The job's parent is the
    fork server, which outlives a `bench run` killed with -9 by seconds, so its death signal alone comes late."""
    import threading

    def watch() -> None:
        while True:
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGKILL)
            except PermissionError:
                pass
            time.sleep(every_s)

    threading.Thread(target=watch, name="exit-when-bench-run-is-gone", daemon=True).start()


def forked_job(workdir: str, experiment: str, job_id: str, log: str, device: str | None, threads: int,
               owner: int | None = None) -> None:
    """A job process of the local executor: output to the job's log, its device and threads set, then `main`.
    It dies with its parent and with `owner` (the `bench run` process), whichever goes first."""
    parent = os.getppid()
    if sys.platform == "linux":
        die_with_parent()
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
    if owner is not None:
        exit_when_gone(owner)
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)
    os.environ.update(CUDA_VISIBLE_DEVICES=device or "", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                      COLUMNS=LOG_COLUMNS, PYTHONUNBUFFERED="1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    code = main([workdir, experiment, job_id])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    workdir, experiment, job_id = (argv if argv is not None else sys.argv[1:])[:3]
    try:
        run_job(load_job(workdir, experiment, job_id), workdir, experiment)
    except KeyboardInterrupt:
        print(f"{now()} {job_id}: interrupted", flush=True)
        return 130
    except BenchError as error:
        print(f"{now()} {job_id}: error: {error}", flush=True)
        return 1
    except BaseException:
        traceback.print_exc()
        print(f"{now()} {job_id}: failed (traceback above)", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
