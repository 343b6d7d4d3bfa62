"""Pieces of `bench run` on their own: job states and blocking, Slurm parameters, the documented keys."""

from __future__ import annotations

from pathlib import Path

from benchmark.core.workdir import Workdir
from benchmark.experiments import schema
from benchmark.experiments.folder import ExperimentFolder
from benchmark.experiments.parse import load_experiment
from benchmark.experiments.plan import expand
from benchmark.experiments.stages import Context
from benchmark.experiments.submit import slurm_parameters
from benchmark.experiments.tracker import Tracker
from run_helpers import REPO, experiment_text, write_experiment

RESOURCES = """
[resources.finetune]
gpus = 4
cpus = 16
mem_gb = 64
time_min = 600
partition = "gpu"
account = "fairness"
slurm = { qos = "high" }
"""


def plan_and_tracker(tmp_path):
    text = experiment_text(Path("/data/nih"), encoders="[encoders.tiny-clip]\n[encoders.tiny-gloria]\n",
                           methods="[methods.linear]\n[methods.lora]\n", extra=RESOURCES)
    plan = expand(load_experiment(write_experiment(tmp_path, text)), distributed=True)
    workdir = Workdir(tmp_path / "work")
    return plan, Tracker(plan, Context(workdir, ExperimentFolder(workdir, plan.experiment)))


def test_a_failure_blocks_its_dependents_and_nothing_else(tmp_path):
    plan, tracker = plan_and_tracker(tmp_path)
    assert [job.id for job in tracker.ready()] == ["dataset/nih"]
    tracker.finish("dataset/nih", "done")
    assert {job.id for job in tracker.ready()} == {"extract/tiny-clip/nih", "extract/tiny-gloria/nih",
                                                   "finetune/tiny-clip/nih6x200/lora/seed0",
                                                   "finetune/tiny-gloria/nih6x200/lora/seed0"}
    tracker.finish("extract/tiny-gloria/nih", "failed", "boom")
    assert tracker["heads/tiny-gloria/nih6x200/seed0"].state == "blocked"
    assert tracker["leaderboard/nih6x200"].state == "blocked"  # it needs every run of the task
    assert tracker["heads/tiny-clip/nih6x200/seed0"].state == "pending"
    assert "finetune/tiny-gloria/nih6x200/lora/seed0" in {job.id for job in tracker.ready()}  # not its dependent
    assert not tracker.finished()


def test_eta_comes_from_the_durations_of_the_stage_so_far(tmp_path):
    plan, tracker = plan_and_tracker(tmp_path)
    assert tracker.eta(slots=1) is None  # nothing measured yet
    for job in plan.jobs:
        tracker.start(job.id)
        tracker[job.id].started -= 10.0
        tracker.finish(job.id, "done")
    assert tracker.eta(slots=2) == 0.0 and tracker.finished()


def test_slurm_jobs_carry_their_stage_resources_and_afterok_dependencies(tmp_path):
    plan, _ = plan_and_tracker(tmp_path)
    job = plan.by_id["finetune/tiny-clip/nih6x200/lora/seed0"]
    params = slurm_parameters(job, ["101", "102"])
    assert params["gpus_per_node"] == 4 and job.processes == 4  # torchrun with 4 processes inside the allocation
    assert (params["cpus_per_task"], params["mem_gb"], params["timeout_min"]) == (16, 64, 600)
    assert (params["slurm_partition"], params["slurm_account"]) == ("gpu", "fairness")
    assert params["slurm_dependency"] == "afterok:101:102"
    assert params["slurm_additional_parameters"] == {"qos": "high", "kill-on-invalid-dep": "yes"}
    heads = slurm_parameters(plan.by_id["heads/tiny-clip/nih6x200/seed0"], [])
    assert heads["gpus_per_node"] == 0 and "slurm_dependency" not in heads and "mem_gb" not in heads


def test_docs_run_md_names_every_key_of_the_file_format():
    text = (REPO / "docs" / "run.md").read_text()
    tables = (schema.EXPERIMENT, schema.DATASET, schema.SYNTHETIC, schema.CXR, schema.TASK, schema.ENCODER, schema.HEAD_METHOD,
              schema.FINETUNE_METHOD, schema.SEEDS, schema.RESOURCES, schema.EXTRACT, schema.LEADERBOARD, schema.REPORT)
    missing = sorted({key.name for table in tables for key in table if f"`{key.name}`" not in text})
    assert not missing, f"docs/run.md does not describe: {missing}"
    for name in schema.TOP_LEVEL + schema.STAGES:
        assert name in text


def test_slurm_without_slurm_is_refused_in_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    exp = write_experiment(tmp_path, experiment_text(None))
    workdir = tmp_path / "home"
    assert main(["run", str(exp), "--executor", "slurm", "--no-live", "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert "--executor slurm: no Slurm here (sbatch and srun not found on PATH)" in " ".join(err.split())
    assert "Traceback" not in err and not (workdir / "experiments").exists()


def _sleep_watching(owner: int) -> None:
    import time

    from benchmark.experiments.worker import exit_when_gone

    exit_when_gone(owner, every_s=0.05)
    time.sleep(60)


def test_a_job_process_ends_when_its_bench_run_is_killed():
    """The local executor's jobs watch their `bench run`; a kill -9 of it ends them (their parent, the fork
    server, lingers for seconds)."""
    import multiprocessing
    import subprocess
    import sys
    import time

    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    job = multiprocessing.get_context("spawn").Process(target=_sleep_watching, args=(owner.pid,))
    job.start()
    try:
        time.sleep(0.5)
        assert job.is_alive()
        owner.kill()
        owner.wait()
        job.join(timeout=20)
        assert not job.is_alive() and job.exitcode == -9
    finally:
        owner.kill()
        job.kill()
