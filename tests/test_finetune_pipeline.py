"""`bench finetune` end to end on a small registered dataset: predictions in the heads' schema, resume, reuse."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmark.cli import main
from benchmark.datasets.registry import load_registered
from benchmark.core.predictions import validate_predictions
from benchmark.core.runs import list_runs, read_predictions
from benchmark.tasks import build_task

sys.path.insert(0, str(Path(__file__).parent))
from finetune_fakes import write_registered_dataset  # noqa: E402


@pytest.fixture
def registered(workdir, tmp_path):
    write_registered_dataset(workdir, tmp_path / "data")
    return workdir


def _runs(workdir: Path) -> list[Path]:
    return sorted((workdir / "runs").glob("*/*/predictions.parquet"))


def test_lora_run_writes_val_and_test_predictions_in_the_heads_schema_and_is_not_redone(registered):
    command = ["finetune", "--model", "tiny-clip", "--task", "nih6x200", "--per-class", "8", "--method", "lora",
               "--epochs", "2", "--batch-size", "8", "--lora-rank", "4", "--no-progress"]
    assert main(command) == 0
    [path] = _runs(registered)
    frame, record = read_predictions(path)
    metadata = record.to_json()
    validate_predictions(frame, source=str(path))
    assert metadata["method"] == "lora" and metadata["encoder"] == "tiny-clip" and metadata["task"] == "nih6x200"
    assert metadata["task_kind"] == "single" and metadata["weights_tag"] == "random-init"
    assert metadata["trainable_parameters"] > 0 and metadata["epochs_run"] == 2
    assert metadata["best_epoch"] in (1, 2) and metadata["chosen"]["best_epoch"] == metadata["best_epoch"]
    assert metadata["hyperparameters"]["lora_rank"] == 4 and metadata["hyperparameters"]["lora_alpha"] == 4.0
    # fine-tuning records what the heads record
    assert record.random_init is True and record.dataset == "nih" and record.excluded_images == 0
    assert record.rows["val"] + record.rows["test"] == frame.height and record.rows["train"] > 0

    manifest, _ = load_registered(registered, "nih")
    task = build_task("nih6x200", manifest, per_class=8)
    expected = task.frame.filter(pl.col("split").is_in(["val", "test"]))
    assert sorted(frame["image_id"].to_list()) == sorted(expected["image_id"].to_list())
    probs = frame.select([f"p_{c}" for c in task.classes]).to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    joined = frame.join(expected, on="image_id", suffix="_task")
    for c in task.classes:
        assert (joined[f"y_{c}"] == joined[f"y_{c}_task"]).all()

    finetune_dirs = list((registered / "finetune").iterdir())
    assert len(finetune_dirs) == 1 and (finetune_dirs[0] / "done.json").exists()
    assert main(command) == 0  # the same run again: reported, not redone
    assert len(_runs(registered)) == 1
    assert main(command + ["--no-resume"]) == 0
    assert len(_runs(registered)) == 2
    assert {run.record.method for run in list_runs(registered)} == {"lora"}


def test_full_fine_tuning_of_a_multi_label_task(registered):
    command = ["finetune", "--model", "tiny-clip", "--task", "nofinding", "--method", "full", "--epochs", "1",
               "--batch-size", "8", "--grad-accum", "2", "--head", "mlp", "--no-progress"]
    assert main(command) == 0
    [path] = _runs(registered)
    frame, record = read_predictions(path)
    metadata = record.to_json()
    assert metadata["method"] == "full" and metadata["task_kind"] == "multi" and metadata["epochs_run"] == 1
    assert metadata["hyperparameters"]["head"] == "mlp" and metadata["hyperparameters"]["grad_accum"] == 2
    assert set(frame["split"].unique()) == {"val", "test"}
    assert frame["p_No_Finding"].is_between(0, 1).all()


def test_a_different_run_in_the_same_folder_needs_no_resume(registered, capsys):
    def command(epochs, *extra):
        return ["finetune", "--model", "tiny-clip", "--task", "nofinding", "--method", "full", "--epochs", str(epochs),
                "--batch-size", "8", "--no-progress", "--run-id", "mine", *extra]

    assert main(command(1)) == 0
    assert main(command(2)) == 2
    assert "describes a different run" in capsys.readouterr().err
    assert main(command(2, "--no-resume")) == 0
    assert len(_runs(registered)) == 2
