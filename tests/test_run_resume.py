"""`bench run` end to end on a small synthetic dataset: resume after `kill -9` at several points (nothing redone,
results equal to an uninterrupted run), failure isolation, the submitit path, dry run and status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from run_helpers import (SMALL_N, SMALL_SIZE, bench, experiment_text, kill_when, start_bench,
                         wait_until_dead, write_experiment)

TASK = "nih6x200"
METHODS = "[methods.linear]\n[methods.zeroshot]\n[methods.lora]\nepochs = 3\nbatch_size = 8\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from benchmark.datasets.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("run-data") / "nih", n=SMALL_N, size=SMALL_SIZE, seed=0)


def state(workdir: Path, job_id: str, experiment: str = "small") -> str | None:
    path = workdir / "experiments" / experiment / "jobs" / f"{job_id}.json"
    try:
        return json.loads(path.read_text())["state"]
    except (OSError, ValueError):
        return None


def predictions(workdir: Path) -> dict[tuple, pl.DataFrame]:
    from benchmark.core.runs import list_runs, read_predictions

    found = {}
    for run in list_runs(workdir, TASK):
        key = (run.record.encoder, run.record.method, run.record.seed)
        assert key not in found, f"two runs of {key}: a finished job was redone"
        found[key] = read_predictions(run.path)[0].sort("split", "image_id")
    return found


def artifacts(workdir: Path) -> dict[str, int]:
    """Files a finished job wrote (stores, pixel stores, prediction files) and when."""
    paths = [*workdir.glob("stores/*/*.h5"), *workdir.glob("pixels/*.h5"), *workdir.glob("runs/*/*/predictions.parquet")]
    return {str(path): path.stat().st_mtime_ns for path in paths}


def no_orphans(workdir: Path) -> None:
    for path in (workdir / "experiments").glob("*/jobs/**/*.json"):
        record = json.loads(path.read_text())
        if record["state"] == "running":
            assert wait_until_dead(record["pid"]), f"{path.name}: its process outlived the killed `bench run`"


def test_kill_9_at_several_points_then_resume_finishes_without_redoing_and_equals_an_uninterrupted_run(tmp_path, dataset):
    exp = write_experiment(tmp_path, experiment_text(dataset, methods=METHODS))
    reference = tmp_path / "reference"
    done = bench(["run", str(exp), "--no-live", "--jobs", "2"], reference)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    work = tmp_path / "killed"
    finetune_dir = work / "finetune"
    points = [
        lambda: state(work, "extract/tiny-clip/nih") in ("running", "done"),
        lambda: any(finetune_dir.glob("*/last.pt")) or state(work, f"finetune/tiny-clip/{TASK}/lora/seed0") == "done",
        lambda: state(work, f"heads/tiny-clip/{TASK}/seed0") == "done",
    ]
    seen: dict[str, int] = {}
    for condition in points:
        assert kill_when(start_bench(["run", str(exp), "--no-live", "--jobs", "2"], work), condition)
        no_orphans(work)
        now = artifacts(work)
        assert {path: now.get(path) for path in seen} == seen, "a finished result was rewritten after a kill"
        seen = now
    final = bench(["run", str(exp), "--no-live", "--jobs", "2"], work)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    after = artifacts(work)
    assert {path: after.get(path) for path in seen} == seen

    resumed, straight = predictions(work), predictions(reference)
    assert set(resumed) == set(straight) == {("tiny-clip", m, 0) for m in ("linear", "zeroshot", "lora")}
    for key, frame in straight.items():
        assert resumed[key]["image_id"].to_list() == frame["image_id"].to_list()
        probabilities = [c for c in frame.columns if c.startswith("p_")]
        assert np.array_equal(resumed[key].select(probabilities).to_numpy(), frame.select(probabilities).to_numpy()), key

    again = bench(["run", str(exp), "--no-live"], work)
    assert again.returncode == 0 and "6 jobs" in again.stdout and "6 cached" in again.stdout
    assert artifacts(work) == after
    board = bench(["leaderboard", "--task", TASK, "--experiment", "small", "--format", "json", "--n-boot", "10",
                   "--n-perm", "0"], work)
    assert {run["method"] for run in json.loads(board.stdout)["runs"]} == {"linear", "zeroshot", "lora"}


def test_a_failing_job_stops_only_its_dependents_and_is_retried_on_request(tmp_path, dataset, workdir):
    encoders = '[encoders.tiny-clip]\n[encoders.tiny-gloria]\nweights = "no-such-checkpoint.pt"\n'
    exp = write_experiment(tmp_path, experiment_text(dataset, encoders=encoders))
    first = bench(["run", str(exp), "--no-live"], workdir)
    assert first.returncode == 1
    assert state(workdir, "extract/tiny-gloria/nih") == "failed"
    assert state(workdir, f"heads/tiny-clip/{TASK}/seed0") == "done"  # the other encoder went on
    assert state(workdir, f"heads/tiny-gloria/{TASK}/seed0") is None and state(workdir, f"leaderboard/{TASK}") is None
    log = workdir / "experiments/small/logs/extract/tiny-gloria/nih.log"
    assert f"log: {log}" in " ".join(first.stdout.split()) and "no-such-checkpoint.pt" in log.read_text()
    assert "blocked" in first.stdout

    second = bench(["run", str(exp), "--no-live"], workdir)
    assert second.returncode == 1 and "failed in an earlier run" in " ".join(second.stdout.split())
    assert log.read_text().count("attempt on") == 1  # not run again
    third = bench(["run", str(exp), "--no-live", "--retry-failed"], workdir)
    assert third.returncode == 1 and log.read_text().count("attempt on") == 2


def test_the_submitit_executor_runs_a_small_plan_end_to_end_and_status_shows_it(tmp_path, dataset, workdir):
    exp = write_experiment(tmp_path, experiment_text(dataset, methods="[methods.linear]\n"))
    done = bench(["run", str(exp), "--executor", "submitit-local", "--no-live"], workdir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    submitted = json.loads((workdir / "experiments/small/submitted.json").read_text())
    assert set(submitted) == {"dataset/nih", "extract/tiny-clip/nih", f"heads/tiny-clip/{TASK}/seed0", f"leaderboard/{TASK}",
                              f"report/{TASK}"}
    assert all(entry["cluster"] == "local" for entry in submitted.values())
    assert state(workdir, f"leaderboard/{TASK}") == "done"
    assert (workdir / f"experiments/small/leaderboard/{TASK}.md").is_file()
    status = bench(["run", str(exp), "--status"], workdir)
    assert status.returncode == 0 and "5 done" in status.stdout


def test_dry_run_lists_the_jobs_says_what_is_cached_and_writes_nothing(tmp_path, dataset, workdir):
    text = experiment_text(dataset, methods=METHODS, extra="\n[resources.finetune]\ngpus = 1\n")
    exp = write_experiment(tmp_path, text)
    dry = bench(["run", str(exp), "--dry-run"], workdir)
    assert dry.returncode == 0, dry.stderr
    words = " ".join(dry.stdout.split())
    assert "6 jobs" in words and f"finetune/tiny-clip/{TASK}/lora/seed0" in words and "GPU: 1 jobs, about" in words
    assert not (workdir / "experiments").exists() and not (workdir / "datasets").exists()
    from benchmark.experiments.local import visible_gpus

    if visible_gpus():
        return
    local = bench(["run", str(exp)], workdir)  # no GPU here: refused before anything runs
    assert local.returncode == 2 and "need a GPU" in local.stderr and not (workdir / "experiments").exists()
