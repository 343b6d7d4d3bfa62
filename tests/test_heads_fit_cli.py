"""`bench fit-heads` and `bench runs` end to end: synthetic NIH data -> tiny-clip store -> heads -> runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.core.schema import FINDINGS, SEED_STUDY_CLASSES
from benchmark.core.runs import list_runs, read_predictions


@pytest.fixture(scope="module")
def extracted(synthetic_nih, tmp_path_factory):
    """A workdir holding the registered synthetic dataset and its tiny-clip embedding store."""
    workdir = tmp_path_factory.mktemp("heads-workdir")
    assert main(["extract", "--model", "tiny-clip", "--root", str(synthetic_nih), "--workdir", str(workdir)]) == 0
    return workdir


def fit(workdir, *arguments):
    return main(["fit-heads", "--model", "tiny-clip", "--workdir", str(workdir), "--mlp-epochs", "3", *arguments])


def test_fit_heads_writes_one_valid_run_per_head(extracted, tmp_path):
    import shutil

    workdir = tmp_path / "wd"
    shutil.copytree(extracted, workdir)
    assert fit(workdir, "--task", "nih14", "--heads", "linear,mlp,zeroshot") == 0
    runs = list_runs(workdir, task="nih14")
    assert sorted(run.record.method for run in runs) == ["linear", "mlp", "zeroshot"]
    frames = {}
    for run in runs:
        frame, record = read_predictions(run.path)
        metadata = record.to_json()
        frames[record.method] = frame
        assert metadata["run_id"] == run.path.parent.name
        assert metadata["encoder"] == "tiny-clip" and metadata["weights_tag"] == "random-init"
        assert metadata["random_init"] is True
        assert metadata["classes"] == list(FINDINGS) and metadata["task_kind"] == "multi"
        assert len(metadata["store_identity"]) == 64 and len(metadata["manifest_digest"]) == 64
        assert set(frame["split"].unique()) == {"val", "test"}
        assert frame.height == metadata["rows"]["val"] + metadata["rows"]["test"]
    linear = next(run.record.to_json() for run in runs if run.record.method == "linear")
    assert linear["chosen"]["C"] in linear["hyperparameters"]["Cs"]
    mlp = next(run.record.to_json() for run in runs if run.record.method == "mlp")
    assert 1 <= mlp["chosen"]["best_epoch"] <= mlp["chosen"]["epochs_run"] <= 3
    ids = [frame["image_id"].to_list() for frame in frames.values()]
    assert ids[0] == ids[1] == ids[2]
    assert not np.allclose(frames["linear"]["p_Effusion"].to_numpy(), frames["mlp"]["p_Effusion"].to_numpy())


def test_force_replaces_the_identical_run_and_plain_reruns_add_one(extracted, tmp_path, capsys):
    import shutil

    workdir = tmp_path / "wd"
    shutil.copytree(extracted, workdir)
    assert fit(workdir, "--task", "nofinding", "--heads", "linear") == 0
    (first,) = list_runs(workdir, task="nofinding")
    assert fit(workdir, "--task", "nofinding", "--heads", "linear") == 0
    assert len(list_runs(workdir, task="nofinding")) == 2
    assert "identical earlier run" in capsys.readouterr().out
    assert fit(workdir, "--task", "nofinding", "--heads", "linear", "--force") == 0
    assert len(list_runs(workdir, task="nofinding")) == 2
    assert "replaced" in capsys.readouterr().out
    assert fit(workdir, "--task", "nofinding", "--heads", "linear", "--seed", "1") == 0
    assert len(list_runs(workdir, task="nofinding")) == 3
    capsys.readouterr()

    assert main(["runs", "--workdir", str(workdir), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {entry["run_id"] for entry in listed} == {run.run_id for run in list_runs(workdir)}
    assert first.run_id in {entry["run_id"] for entry in listed}


def test_single_label_seed_task_with_fitted_zero_shot_temperature(extracted, tmp_path):
    import shutil

    workdir = tmp_path / "wd"
    shutil.copytree(extracted, workdir)
    code = fit(workdir, "--task", "nih6x200", "--per-class", "4", "--task-param", "split_fractions=0.4,0.3,0.3",
               "--heads", "seed-linear,zeroshot",
               "--seed-linear-epochs", "2", "--zeroshot-temperature", "fit")
    assert code == 0
    runs = {run.record.method: run for run in list_runs(workdir, task="nih6x200")}
    assert set(runs) == {"seed-linear", "zeroshot"}
    frame, record = read_predictions(runs["zeroshot"].path)
    metadata = record.to_json()
    assert metadata["task_kind"] == "single" and metadata["classes"] == list(SEED_STUDY_CLASSES)
    assert metadata["task_params"]["per_class"] == 4
    assert metadata["chosen"]["temperature_fitted_on"] == "val" and metadata["chosen"]["temperature"] > 0
    probabilities = frame.select([f"p_{c}" for c in SEED_STUDY_CLASSES]).to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert runs["seed-linear"].record.chosen["epochs_run"] <= 2


def test_missing_store_and_unknown_head_are_clear_errors(extracted, tmp_path, capsys):
    assert main(["fit-heads", "--model", "tiny-clip-rn", "--task", "nih14", "--workdir", str(extracted)]) == 2
    assert "bench extract --model tiny-clip-rn" in capsys.readouterr().err
    assert main(["fit-heads", "--model", "tiny-clipp", "--task", "nih14", "--workdir", str(extracted)]) == 2
    err = capsys.readouterr().err
    assert "unknown encoder 'tiny-clipp'" in err and "bench extract" not in err
    with pytest.raises(SystemExit):
        main(["fit-heads", "--model", "tiny-clip", "--task", "nih14", "--heads", "svm", "--workdir", str(extracted)])
    assert "unknown head" in capsys.readouterr().err
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "nih14", "--workdir", str(tmp_path)]) == 2
    assert "no dataset 'nih' is registered" in capsys.readouterr().err


def test_alignment_leaves_out_excluded_images_and_refuses_missing_ones():
    from types import SimpleNamespace

    import polars as pl

    from benchmark.core.errors import BenchError
    from benchmark.pipelines.heads import align_task_to_store

    frame = pl.DataFrame({"image_id": ["c", "a", "b"], "split": ["train", "val", "test"], "y_X": [1, 0, 1]})
    task = SimpleNamespace(name="t", kind="multi", classes=("X",), frame=frame)
    store = SimpleNamespace(path="s.h5", image_ids=np.array(["a", "b", "c", "d"]), excluded=np.array([False, True, False, False]))
    aligned = align_task_to_store(task, store)
    assert aligned.excluded == ["b"]
    assert aligned.frame["image_id"].to_list() == ["c", "a"]
    assert aligned.store_rows.tolist() == [2, 0]
    missing = SimpleNamespace(path="s.h5", image_ids=np.array(["a", "b"]), excluded=np.zeros(2, dtype=bool))
    with pytest.raises(BenchError, match=r"1 image\(s\) of task 't' are not in the embedding store"):
        align_task_to_store(task, missing)
