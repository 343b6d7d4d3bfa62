"""Out-of-distribution runs: `bench fit-heads --train-on A --test-on A,B` end to end, then the leaderboard."""

from __future__ import annotations

import json

import polars as pl
import pytest

from benchmark.cli import main
from benchmark.core.runs import list_runs, read_predictions
from benchmark.datasets.synth_chexpert import write_chexpert_synthetic


@pytest.fixture(scope="module")
def two_datasets(synthetic_nih, tmp_path_factory):
    """A workdir with tiny-clip stores over a CheXpert-layout and an NIH-layout synthetic dataset, and the runs of
    `fit-heads --task common --train-on chexpert --test-on chexpert,nih --heads linear,zeroshot`."""
    workdir = tmp_path_factory.mktemp("transfer-workdir")
    chexpert = write_chexpert_synthetic(tmp_path_factory.mktemp("cx") / "cx", n=160, size=16, seed=8)
    assert main(["extract", "--model", "tiny-clip", "--dataset", "chexpert", "--root", str(chexpert), "--uncertain", "ignore",
                 "--workdir", str(workdir)]) == 0
    assert main(["extract", "--model", "tiny-clip", "--root", str(synthetic_nih), "--workdir", str(workdir)]) == 0
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "common", "--train-on", "chexpert", "--test-on", "chexpert,nih",
                 "--heads", "linear,zeroshot", "--workdir", str(workdir)]) == 0
    return workdir


def test_one_run_per_test_dataset_with_source_val_and_target_test_rows(two_datasets):
    from benchmark.datasets.registry import load_registered

    workdir = two_datasets
    runs = [read_predictions(run.path) for run in list_runs(workdir, task="common")]
    pairs = [(r.method, r.test_dataset) for _, r in runs]
    assert len(pairs) == 4 and set(pairs) == {("linear", None), ("linear", "nih"), ("zeroshot", None), ("zeroshot", "nih")}
    chexpert, _ = load_registered(workdir, "chexpert")
    nih, _ = load_registered(workdir, "nih")
    inside = next(frame for frame, record in runs if record.method == "linear" and record.test_dataset is None)
    for frame, record in runs:
        assert record.dataset == "chexpert"
        if record.test_dataset != "nih":
            continue
        val, test = frame.filter(pl.col("split") == "val"), frame.filter(pl.col("split") == "test")
        assert set(val["image_id"]) <= set(chexpert["image_id"]) and set(test["image_id"]) <= set(nih["image_id"])
        assert set(test["image_id"]) == set(nih.filter(pl.col("split") == "test")["image_id"])
        assert record.rows["test"] == test.height and record.details["test_rows_from"] == "nih"
        assert record.details["test_manifest_digest"] != record.manifest_digest
        if record.method == "linear":  # the same fitted head: identical val predictions in and out of distribution
            assert val.equals(inside.filter(pl.col("split") == "val").select(val.columns))


def test_leaderboard_shows_in_and_out_of_distribution_runs_side_by_side(two_datasets, capsys):
    workdir = two_datasets
    assert main(["leaderboard", "--task", "common", "--method", "linear", "--rank-by", "macro_auc", "--format", "json",
                 "--n-boot", "30", "--n-perm", "0", "--workdir", str(workdir)]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert {(run["dataset"], run["test_dataset"]) for run in runs} == {("chexpert", "chexpert"), ("chexpert", "nih")}
    from benchmark.leaderboard import load_task_runs
    from benchmark.leaderboard.cells import short_label

    labels = sorted(short_label(run) for run in load_task_runs(workdir, "common", method="linear"))
    assert labels[0].startswith("tiny-clip linear chexpert->nih s0 (") and labels[1].startswith("tiny-clip linear s0 (")


def test_a_test_dataset_that_is_not_registered_is_named(two_datasets, capsys):
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "common", "--train-on", "chexpert", "--test-on", "mimic",
                 "--heads", "linear", "--workdir", str(two_datasets)]) == 2
    assert "no dataset 'mimic' is registered" in capsys.readouterr().err
