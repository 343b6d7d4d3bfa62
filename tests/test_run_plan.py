"""Plans: an experiment expands into the jobs issue 13 names, with their dependencies; jobs are plain data."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

from benchmark.experiments.parse import load_experiment
from benchmark.experiments.plan import REPORT_MODULE, Job, Plan, expand
from run_helpers import experiment_text, write_experiment

ENCODERS = "[encoders.tiny-clip]\n[encoders.tiny-gloria]\n"
METHODS = ("[methods.linear]\n[methods.zeroshot]\n[methods.lora]\nepochs = 1\n"
           '[methods.full]\nencoders = ["tiny-clip"]\n')
RESOURCES = "\n[resources.finetune]\ngpus = 2\n"


def grid(tmp_path, **changes):
    text = experiment_text(Path("/data/nih"), encoders=changes.get("encoders", ENCODERS),
                           methods=changes.get("methods", METHODS), seeds=changes.get("seeds", "repeats = 3"),
                           extra=changes.get("extra", RESOURCES))
    return load_experiment(write_experiment(tmp_path, text))


def test_extract_per_encoder_heads_per_seed_finetune_per_method_and_seed_then_the_leaderboard(tmp_path):
    plan = expand(grid(tmp_path))
    ids = [job.id for job in plan.jobs]
    assert ids[:3] == ["dataset/nih", "extract/tiny-clip/nih", "extract/tiny-gloria/nih"]
    heads = [i for i in ids if i.startswith("heads/")]
    finetune = [i for i in ids if i.startswith("finetune/")]
    assert sorted(heads) == sorted(f"heads/{e}/nih6x200/seed{s}" for e in ("tiny-clip", "tiny-gloria") for s in range(3))
    expected = {f"finetune/{e}/nih6x200/lora/seed{s}" for e in ("tiny-clip", "tiny-gloria") for s in range(3)}
    expected |= {f"finetune/tiny-clip/nih6x200/full/seed{s}" for s in range(3)}  # full: tiny-clip only
    assert set(finetune) == expected
    assert ids[-2:] == ["leaderboard/nih6x200", "report/nih6x200"] and len(ids) == 1 + 2 + 6 + 9 + 1 + 1

    by_id = plan.by_id
    assert by_id["heads/tiny-gloria/nih6x200/seed2"].deps == ("extract/tiny-gloria/nih",)
    assert by_id["finetune/tiny-clip/nih6x200/lora/seed0"].deps == ("dataset/nih",)
    assert set(by_id["leaderboard/nih6x200"].deps) == set(heads) | set(finetune)
    assert by_id["report/nih6x200"].deps == ("leaderboard/nih6x200",) and by_id["report/nih6x200"].gpus == 0
    for position, job in enumerate(plan.jobs):  # every job after the jobs it needs
        assert all(ids.index(dep) < position for dep in job.deps)

    heads_job = by_id["heads/tiny-clip/nih6x200/seed1"].payload
    assert heads_job["heads"] == ["linear", "zeroshot"] and heads_job["seed"] == 1 and heads_job["task_seed"] == 0
    assert heads_job["experiment"] == "small"


def test_gpus_one_per_job_here_several_under_torchrun_on_slurm(tmp_path):
    experiment = grid(tmp_path)
    local = expand(experiment).by_id["finetune/tiny-clip/nih6x200/lora/seed0"]
    slurm = expand(experiment, distributed=True).by_id["finetune/tiny-clip/nih6x200/lora/seed0"]
    assert (local.gpus, local.processes) == (1, 1)
    assert (slurm.gpus, slurm.processes) == (2, 2)
    assert expand(experiment).by_id["heads/tiny-clip/nih6x200/seed0"].gpus == 0


def test_a_job_is_plain_picklable_data_that_survives_the_plan_file(tmp_path):
    plan = expand(grid(tmp_path))
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.jobs == plan.jobs
    job = plan.by_id["finetune/tiny-clip/nih6x200/full/seed2"]
    assert pickle.loads(pickle.dumps(job)) == job
    assert Job.from_json(job.to_json()).digest == job.digest
    other = expand(grid(tmp_path, methods=METHODS.replace("epochs = 1", "epochs = 2"))).by_id[job.id.replace("full", "lora")]
    assert other.digest != plan.by_id[job.id.replace("full", "lora")].digest  # inputs changed: another digest


def test_explicit_seeds_and_heads_only(tmp_path):
    plan = expand(grid(tmp_path, seeds="list = [77, 5]", methods="[methods.mlp]\n", extra=""))
    assert [job.id for job in plan.jobs if job.stage == "heads"] == [
        "heads/tiny-clip/nih6x200/seed77", "heads/tiny-clip/nih6x200/seed5",
        "heads/tiny-gloria/nih6x200/seed77", "heads/tiny-gloria/nih6x200/seed5"]
    assert not [job for job in plan.jobs if job.stage == "finetune"]


def test_a_thousand_job_plan_expands(tmp_path):
    plan = expand(grid(tmp_path, seeds="repeats = 200", extra=""))
    assert len(plan) == 1 + 2 + 2 * 200 * 2 + 200 + 1 + 1 == 1005  # heads and LoRA for both encoders, full for one


def test_the_report_stage_joins_the_plan_once_bench_report_exists(tmp_path):
    """The hook (plan.report_jobs) must be wired when `bench report` (issue 14) lands."""
    stages = {job.stage for job in expand(grid(tmp_path)).jobs}
    if importlib.util.find_spec(REPORT_MODULE) is None:
        assert "report" not in stages
    else:
        assert "report" in stages, "bench report exists: add its job in benchmark/experiments/plan.py report_jobs"
