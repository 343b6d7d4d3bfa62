"""Masked labels end to end on the synthetic MIMIC-CXR layout with `--uncertain ignore`: every test image stays in
the prediction file (a masked label as null), fit-heads says how many are masked, the leaderboard notes them."""

from __future__ import annotations

import json

import polars as pl

from benchmark.cli import main
from benchmark.core.runs import list_runs, read_predictions
from benchmark.core.schema import label_column
from benchmark.datasets.synth_mimic import write_mimic_synthetic


def test_every_test_image_is_kept_and_masked_entries_are_noted(tmp_path, capsys):
    root = write_mimic_synthetic(tmp_path / "mx", n=160, size=16, seed=3)
    workdir = str(tmp_path / "work")
    assert main(["extract", "--model", "tiny-clip", "--dataset", "mimic", "--root", str(root / "mimic-cxr-jpg"),
                 "--mimic-iv", str(root / "mimiciv"), "--uncertain", "ignore", "--workdir", workdir]) == 0
    capsys.readouterr()
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "mimic14", "--dataset", "mimic", "--heads", "linear",
                 "--workdir", workdir]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "test image(s) have a masked label (uncertain under --uncertain ignore): kept" in said

    from benchmark.datasets.registry import load_registered
    from benchmark.tasks import build_task

    manifest, _ = load_registered(workdir, "mimic")
    task = build_task("mimic14", manifest)
    (run,) = list_runs(workdir, task="mimic14")
    frame, record = read_predictions(run.path)
    assert record.task_kind == "multi"
    for split in ("val", "test"):
        expected = task.frame.filter(pl.col("split") == split)
        assert sorted(frame.filter(pl.col("split") == split)["image_id"]) == sorted(expected["image_id"])
    test = frame.filter(pl.col("split") == "test")
    masked = {c: test[label_column(c)].null_count() for c in task.classes}
    assert sum(masked.values()) > 0  # masked entries travel as null, not as 0
    assert masked == {c: task.report["masked"]["test"][c] for c in task.classes}

    assert main(["leaderboard", "--task", "mimic14", "--rank-by", "macro_auc", "--format", "json", "--n-boot", "20",
                 "--n-perm", "0", "--workdir", workdir]) == 0
    board = json.loads(capsys.readouterr().out)
    notes = [note for note in board["notes"] if "masked test labels" in note]
    assert len(notes) == 1 and all(f"{c} {n} of {test.height}" in notes[0] for c, n in masked.items() if n)
    assert any("masked test labels" in note for note in board["runs"][0]["notes"])
