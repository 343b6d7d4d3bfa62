"""Tasks built from a canonical manifest: nih14, nofinding, nih6x200 (balance, patient-disjoint splits, determinism)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from benchmark.core.schema import FINDINGS, LABEL_COLUMNS, NO_FINDING, SEED_STUDY_CLASSES
from benchmark.core.manifest import MANIFEST_SCHEMA, validate_manifest
from benchmark.core.errors import BenchError
from benchmark.tasks import CELLS, TASKS, build_task, parse_task_params

CELL_AGES = {"<60": (20, 59), ">=60": (60, 90)}


def make_manifest(per_cell: int = 12, *, seed: int = 0, short: tuple | None = None) -> pl.DataFrame:
    """A manifest with `per_cell` single-label images per seed class and sex x age cell (two per patient),
    plus multi-label, No Finding, other-finding and unknown-sex rows. `short=(class, sex, group, n)` leaves only n
    images in one cell."""
    rng = np.random.default_rng(seed)
    rows, patient = [], 0
    for label in SEED_STUDY_CLASSES:
        for sex, group in CELLS:
            count = short[3] if short and short[:3] == (label, sex, group) else per_cell
            for k in range(count):
                if k % 2 == 0:
                    patient += 1
                rows.append((patient, sex, float(rng.integers(*CELL_AGES[group])), {label}))
    for labels in ({"Effusion", "Edema"}, {NO_FINDING}, {"Hernia"}, {"Cardiomegaly"}):
        for _ in range(5):
            patient += 1
            rows.append((patient, "M", 50.0, labels))
    patient += 1
    rows.append((patient, None, 50.0, {"Edema"}))
    order = rng.permutation(len(rows))
    records = []
    for index in order:
        patient_id, sex, age, labels = rows[index]
        record = {
            "image_id": f"{patient_id:08d}_{index:03d}.png",
            "path": f"images/{patient_id:08d}_{index:03d}.png",
            "patient_id": f"{patient_id:08d}",
            "sex": sex,
            "age": age,
            "view": "PA",
            "split": "train" if patient_id % 5 else "test",
        }
        record.update({name: int(name in labels) for name in LABEL_COLUMNS})
        records.append(record)
    return validate_manifest(pl.DataFrame(records, schema=MANIFEST_SCHEMA))


@pytest.fixture(scope="module")
def manifest():
    return make_manifest()


def test_nih14_and_nofinding_shapes(manifest):
    nih14 = build_task("nih14", manifest)
    assert nih14.kind == "multi" and nih14.classes == FINDINGS
    assert nih14.frame.columns == ["image_id", "patient_id", "sex", "age", "split", *[f"y_{n}" for n in FINDINGS]]
    assert nih14.frame["image_id"].to_list() == manifest["image_id"].to_list()
    train = nih14.labels("train")
    assert train.shape == (len(nih14.split_indices("train")), 14)
    assert set(np.unique(train)) <= {0, 1}
    assert train.sum() == manifest.filter(pl.col("split") == "train").select(FINDINGS).sum().sum_horizontal().item()
    nofinding = build_task("nofinding", manifest)
    assert nofinding.kind == "multi" and nofinding.classes == (NO_FINDING,)
    assert nofinding.labels("test").shape == (len(nofinding.split_indices("test")), 1)
    assert nofinding.labels().sum() == manifest[NO_FINDING].sum()


def test_unlabelled_rows_are_dropped_and_counted(manifest):
    unknown = manifest.with_columns(pl.when(pl.col("image_id") == manifest["image_id"][3]).then(None).otherwise(pl.col("Mass")).alias("Mass"))
    task = build_task("nih14", unknown)
    assert task.frame.height == manifest.height - 1 and task.report["dropped_unlabelled"] == 1
    assert build_task("nofinding", unknown).report["dropped_unlabelled"] == 0


def _cells(task) -> dict:
    label = task.labels()
    frame = task.frame.with_columns(
        label=pl.Series(np.array(task.classes)[label]),
        group=pl.when(pl.col("age") < 60).then(pl.lit("<60")).otherwise(pl.lit(">=60")),
    )
    return {(l, s, g): n for l, s, g, n in frame.group_by("label", "sex", "group").len().iter_rows()}


def test_nih6x200_is_balanced_over_classes_and_cells(manifest):
    task = build_task("nih6x200", manifest, per_class=20, seed=3)
    assert task.kind == "single" and task.classes == SEED_STUDY_CLASSES
    assert task.frame.height == 6 * 20
    assert _cells(task) == {(label, sex, group): 5 for label in SEED_STUDY_CLASSES for sex, group in CELLS}
    y = task.frame.select(task.label_columns).to_numpy()
    assert (y.sum(axis=1) == 1).all()
    source = manifest.filter(pl.col("image_id").is_in(task.frame["image_id"].to_list()))
    single = source.select(FINDINGS).sum_horizontal()
    assert (single == 1).all() and (source[NO_FINDING] == 0).all() and source["sex"].null_count() == 0
    order = {image: i for i, image in enumerate(manifest["image_id"])}
    positions = [order[image] for image in task.frame["image_id"]]
    assert positions == sorted(positions)


def test_nih6x200_resplits_patient_disjointly_in_proportion(manifest):
    task = build_task("nih6x200", manifest, per_class=40, seed=0, split_fractions=(0.6, 0.2, 0.2))
    per_patient = task.frame.group_by("patient_id").agg(pl.col("split").n_unique())
    assert per_patient["split"].max() == 1
    sizes = {split: len(task.split_indices(split)) for split in ("train", "val", "test")}
    assert sizes["train"] + sizes["val"] + sizes["test"] == 240
    assert abs(sizes["train"] - 144) <= 8 and abs(sizes["val"] - 48) <= 8 and abs(sizes["test"] - 48) <= 8
    for split in ("train", "val", "test"):
        assert set(task.labels(split)) == set(range(6)), f"every class should appear in {split}"


def test_nih6x200_is_deterministic_for_a_seed(manifest):
    first = build_task("nih6x200", manifest, per_class=20, seed=7)
    assert first.frame.equals(build_task("nih6x200", manifest, per_class=20, seed=7).frame)
    other = build_task("nih6x200", manifest, per_class=20, seed=8)
    assert not first.frame.equals(other.frame)
    assert first.params == {"seed": 7, "per_class": 20, "split_fractions": (0.7, 0.1, 0.2), "balance": "cells"}


def test_nih6x200_names_the_short_cell_and_a_feasible_size():
    manifest = make_manifest(per_cell=12, short=("Edema", "F", ">=60", 3))
    with pytest.raises(BenchError) as caught:
        build_task("nih6x200", manifest, per_class=20)
    message = str(caught.value)
    assert "Edema" in message and "F/age>=60: 3 of 5" in message and "at most 12" in message and "--per-class" in message
    assert build_task("nih6x200", manifest, per_class=12).frame.height == 72


def test_nih6x200_margins_balance_keeps_sex_and_age_margins_equal():
    manifest = make_manifest(per_cell=12, short=("Edema", "F", ">=60", 3))
    task = build_task("nih6x200", manifest, per_class=20, balance="margins")
    cells = _cells(task)
    assert [cells[("Edema", s, g)] for s, g in CELLS] == [7, 3, 3, 7]
    assert [cells[("Cardiomegaly", s, g)] for s, g in CELLS] == [5, 5, 5, 5]
    with pytest.raises(BenchError, match="balance=margins"):
        build_task("nih6x200", make_manifest(per_cell=12, short=("Edema", "F", ">=60", 0)), per_class=40, balance="margins")


def test_parameters_are_parsed_and_checked(manifest):
    assert parse_task_params("nih6x200", ["per-class=20", "split_fractions=0.8,0.1,0.1"]) == {
        "per_class": 20,
        "split_fractions": (0.8, 0.1, 0.1),
    }
    with pytest.raises(BenchError, match="per_class=20.*nih14 takes: none"):
        parse_task_params("nih14", ["per_class=20"])
    with pytest.raises(BenchError) as error:  # a well-formed key=value is not called malformed
        parse_task_params("nih14", ["per_class=20"])
    assert "not of the form" not in str(error.value) and "nih14 has no parameter 'per_class'" in str(error.value)
    with pytest.raises(BenchError, match="'per_class': it is not of the form key=value"):
        parse_task_params("nih6x200", ["per_class"])
    with pytest.raises(BenchError, match="sum to 1"):
        parse_task_params("nih6x200", ["split_fractions=0.8,0.3,0.1"])
    with pytest.raises(BenchError, match="unknown task 'nih15'; known tasks: nih14, nofinding, nih6x200"):
        build_task("nih15", manifest)
    with pytest.raises(BenchError, match="has no parameter"):
        build_task("nih14", manifest, per_class=3)
    with pytest.raises(BenchError, match="unknown split"):
        build_task("nih14", manifest).split_indices("dev")
    assert set(TASKS) == {"nih14", "nofinding", "nih6x200", "chexpert14", "mimic14", "common"} and all(t.description for t in TASKS.values())
