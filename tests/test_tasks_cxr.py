"""Tasks on CheXpert / MIMIC manifests: chexpert14, mimic14, common, nofinding; masked labels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from benchmark.core.errors import BenchError
from benchmark.core.schema import CHEXPERT_LABELS, MASKED, label_column
from benchmark.datasets.chexpert import load_chexpert
from benchmark.datasets.common import LoadOptions
from benchmark.datasets.labels import common_map
from benchmark.datasets.nih import load_nih
from benchmark.datasets.synth_chexpert import write_chexpert_synthetic
from benchmark.tasks import build_task


@pytest.fixture(scope="module")
def masked_manifest(tmp_path_factory):
    root = write_chexpert_synthetic(tmp_path_factory.mktemp("cx") / "cx", n=600, size=16, seed=4, metadata_only=True)
    return load_chexpert(root, LoadOptions(uncertain="ignore", metadata_only=True, val_fraction=0.2)).manifest


def test_masked_labels_stay_in_every_split(masked_manifest):
    task = build_task("chexpert14", masked_manifest)
    assert task.classes == CHEXPERT_LABELS and task.kind == "multi"
    assert {"race"} <= set(task.frame.columns) and "insurance" not in task.frame.columns  # only attributes with values
    train = task.labels("train")
    assert (train == MASKED).any() and set(np.unique(train)) <= {MASKED, 0, 1}
    masked_rows = masked_manifest.filter(pl.any_horizontal([pl.col(c).is_null() for c in CHEXPERT_LABELS])
                                         & pl.any_horizontal([pl.col(c).is_not_null() for c in CHEXPERT_LABELS]))
    for split in ("val", "test"):
        rows = task.frame.filter(pl.col("split") == split)
        kept = masked_rows.filter(pl.col("split") == split).height
        assert task.report["masked_rows"][split] == kept  # kept (CheXpert's val / test: radiologists', never uncertain)
        assert rows.select(pl.any_horizontal([pl.col(c).is_null() for c in task.label_columns])).to_series().sum() == kept
        for c in ("Atelectasis", "Edema"):
            assert task.report["masked"][split][c] == rows[label_column(c)].null_count()
    expected_train_masked = masked_manifest.filter(pl.col("split") == "train")["Atelectasis"].null_count()
    assert task.report["masked"]["train"]["Atelectasis"] == expected_train_masked == int((train[:, CHEXPERT_LABELS.index("Atelectasis")] == MASKED).sum())
    assert build_task("mimic14", masked_manifest).frame.equals(task.frame)


def test_common_maps_each_datasets_column(masked_manifest, synthetic_nih):
    classes = tuple(common_map())
    cx = build_task("common", masked_manifest)
    nih_manifest = load_nih(synthetic_nih).manifest
    nih = build_task("common", nih_manifest)
    assert cx.classes == nih.classes == classes and "Effusion" in classes
    kept = masked_manifest.join(cx.frame.select("image_id", label_column("Effusion")), on="image_id")
    assert kept[label_column("Effusion")].to_list() == kept["Pleural_Effusion"].to_list()  # CheXpert: Pleural Effusion
    assert nih.frame[label_column("Effusion")].to_list() == nih_manifest["Effusion"].to_list()  # NIH: Effusion


def test_a_task_without_labels_on_this_dataset_is_refused(masked_manifest, synthetic_nih):
    with pytest.raises(BenchError, match="task nih14: this dataset has no Effusion, Infiltration"):
        build_task("nih14", masked_manifest)
    with pytest.raises(BenchError, match="task chexpert14: this dataset has no Enlarged_Cardiomediastinum"):
        build_task("chexpert14", load_nih(synthetic_nih).manifest)


def test_nofinding_runs_on_every_dataset(masked_manifest, synthetic_nih):
    for manifest in (masked_manifest, load_nih(synthetic_nih).manifest):
        task = build_task("nofinding", manifest)
        assert task.labels().sum() == manifest["No_Finding"].sum()
