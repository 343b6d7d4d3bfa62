"""The prediction schema and run records: round trip, validation errors, run paths and listing."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from benchmark.core.errors import BenchError
from benchmark.core.predictions import infer_task_kind, prediction_classes, prediction_frame, validate_predictions
from benchmark.core.runs import METADATA_KEY, RunRecord, list_runs, new_run_path, read_predictions, write_predictions

CLASSES = ("Effusion", "Edema", "Cardiomegaly")


def task_rows(n=12, *, single=True, seed=0):
    rng = np.random.default_rng(seed)
    columns = {
        "image_id": [f"{i:05d}_000.png" for i in range(n)],
        "patient_id": [f"p{i // 2}" for i in range(n)],
        "sex": ["F" if i % 2 else "M" for i in range(n)],
        "age": [float(20 + i) for i in range(n)],
        "split": ["val" if i < n // 2 else "test" for i in range(n)],
    }
    if single:
        labels = np.eye(len(CLASSES), dtype=np.int8)[rng.integers(0, len(CLASSES), n)]
    else:
        labels = rng.integers(0, 2, (n, len(CLASSES))).astype(np.int8)
        labels[0] = [1, 1, 0]
    for i, c in enumerate(CLASSES):
        columns[f"y_{c}"] = pl.Series(labels[:, i], dtype=pl.Int8)
    return pl.DataFrame(columns)


def make_frame(n=12, *, single=True, seed=0):
    rows = task_rows(n, single=single, seed=seed)
    probabilities = np.random.default_rng(seed + 1).dirichlet(np.ones(len(CLASSES)), n)
    return prediction_frame(rows, probabilities, CLASSES)


def record(**changes) -> RunRecord:
    values = {"run_id": "", "encoder": "tiny-clip", "method": "linear", "task": "nih6x200", "seed": 3,
              "chosen": {"C": 0.5}, **changes}
    return RunRecord(**values)


METADATA = record()


def test_round_trip_keeps_rows_dtypes_and_metadata(tmp_path):
    frame = make_frame()
    path = new_run_path(tmp_path, "nih6x200", "tiny-clip", "linear")
    write_predictions(path, frame, METADATA)
    back, metadata = read_predictions(path)
    assert back.equals(frame)
    assert back.schema["y_Edema"] == pl.Int8 and back.schema["p_Edema"] == pl.Float64
    assert metadata.run_id == path.parent.name
    assert metadata.classes == CLASSES
    assert metadata.task_kind == "single"
    assert metadata.chosen == {"C": 0.5}
    assert "torch" in metadata.versions and metadata.created


def test_task_kind_is_inferred_from_labels():
    assert infer_task_kind(make_frame(single=True)) == "single"
    assert infer_task_kind(make_frame(single=False)) == "multi"
    assert infer_task_kind(make_frame(single=True), "multi") == "multi"


def test_existing_run_is_not_overwritten_without_force(tmp_path):
    path = new_run_path(tmp_path, "nih6x200", "tiny-clip", "linear")
    write_predictions(path, make_frame(seed=0), METADATA)
    with pytest.raises(BenchError, match="never overwritten silently"):
        write_predictions(path, make_frame(seed=5), METADATA)
    replacement = make_frame(seed=5)
    write_predictions(path, replacement, METADATA, force=True)
    assert read_predictions(path)[0].equals(replacement)


def test_new_run_paths_are_distinct_and_listed(tmp_path):
    first = new_run_path(tmp_path, "nih6x200", "tiny-clip", "linear")
    second = new_run_path(tmp_path, "nih6x200", "tiny-clip", "linear")
    other = new_run_path(tmp_path, "nofinding", "tiny-clip", "mlp")
    assert first != second
    write_predictions(first, make_frame(), METADATA)
    write_predictions(second, make_frame(), METADATA)
    write_predictions(other, make_frame(single=False), record(task="nofinding", method="mlp"))
    assert {r.path for r in list_runs(tmp_path)} == {first, second, other}
    listed = list_runs(tmp_path, task="nih6x200")
    assert {r.path for r in listed} == {first, second}
    assert all(r.record.method == "linear" and r.rows == 12 and not r.problem for r in listed)


def test_unreadable_run_is_listed_with_a_problem(tmp_path):
    path = new_run_path(tmp_path, "nih6x200", "tiny-clip", "linear")
    path.write_text("not parquet")
    (listed,) = list_runs(tmp_path)
    assert listed.problem and "Parquet" in listed.problem


def test_unsafe_names_are_refused(tmp_path):
    with pytest.raises(BenchError, match="task name"):
        new_run_path(tmp_path, "../escape", "tiny-clip", "linear")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop("split"), "missing column 'split'"),
        (lambda f: f.drop("y_Edema"), r"have no label column \['y_Edema'\]"),
        (lambda f: f.drop("p_Edema"), r"have no probability column"),
        (lambda f: f.with_columns(pl.lit(1.5).alias("p_Edema")), r"outside \[0, 1\]"),
        (lambda f: f.with_columns(pl.lit(float("nan")).alias("p_Edema")), "is NaN"),
        (lambda f: f.with_columns(pl.lit("train").alias("split")), "unknown split 'train'"),
        (lambda f: f.with_columns(pl.lit("same").alias("image_id")), "duplicate image_id"),
        (lambda f: f.with_columns(pl.lit(2, dtype=pl.Int8).alias("y_Edema")), "labels are 0 or 1"),
        (lambda f: f.with_columns(pl.lit("female").alias("sex")), "sex is 'female'"),
        (lambda f: f.with_columns(pl.lit(None, dtype=pl.Int8).alias("y_Edema")), "label 'y_Edema' is empty"),
    ],
)
def test_validation_names_the_problem(change, message):
    with pytest.raises(BenchError, match=message):
        validate_predictions(change(make_frame()), source="run.parquet")


def test_outside_tool_csv_reads_as_external(tmp_path):
    frame = make_frame().drop("patient_id", "sex", "age")
    path = tmp_path / "other_tool.csv"
    frame.with_columns(pl.col("^y_.*$").cast(pl.Int64)).write_csv(path)
    back, metadata = read_predictions(path)
    assert metadata.method == "external" and metadata.run_id == "other_tool"
    assert prediction_classes(back) == CLASSES
    assert back.schema["y_Edema"] == pl.Int8
    assert back["image_id"].to_list() == frame["image_id"].to_list()


def test_write_refuses_bad_metadata(tmp_path):
    path = tmp_path / "runs" / "t" / "r" / "predictions.parquet"
    with pytest.raises(BenchError, match="method name 'svm/rbf' cannot be used"):
        write_predictions(path, make_frame(), record(method="svm/rbf"))
    with pytest.raises(BenchError, match="lacks"):
        write_predictions(path, make_frame(), record(encoder=""))
    with pytest.raises(BenchError, match="classes"):
        write_predictions(path, make_frame(), record(classes=tuple(reversed(CLASSES))))
    with pytest.raises(BenchError, match="shadow record fields"):
        write_predictions(path, make_frame(), record(details={"seed": 4}))
    assert not path.exists()


def test_metadata_is_plain_json_in_parquet(tmp_path):
    import pyarrow.parquet as pq

    path = new_run_path(tmp_path, "nih6x200", "tiny-clip", "linear")
    write_predictions(path, make_frame(), METADATA)
    stored = json.loads(pq.read_schema(path).metadata[METADATA_KEY.encode()])
    assert stored["encoder"] == "tiny-clip" and stored["seed"] == 3
