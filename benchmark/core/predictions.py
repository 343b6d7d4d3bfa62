"""The prediction frame: what every method writes for the val and test images, and the leaderboard reads.

One row per image of the val and test splits:

    image_id     Utf8, unique, never null            the manifest's image id (join key to the manifest)
    patient_id   Utf8 (null allowed)                 optional in files from outside tools
    sex          Utf8 "F" / "M" / null               optional in files from outside tools
    age          Float64 years / null                optional in files from outside tools
    race         Utf8 one of RACES / null            optional (datasets that record it: CheXpert, MIMIC)
    insurance    Utf8 one of INSURANCES / null       optional (MIMIC)
    split        Utf8 "val" / "test"
    y_<class>    Int8 0/1, null = masked             one per class, in the task's class order; null (a blank in
                                                     CSV) only in multi-label tasks: a masked label (uncertain
                                                     under --uncertain ignore), left out of that class's figures
    p_<class>    Float64 in [0, 1], never NaN         one per class, same classes as the y_ columns

Extra columns are kept and ignored. The task is single-label (softmax, argmax decides) when every row has
exactly one positive across two or more `y_` columns and no masked label, or when the run record says
`task_kind: "single"` (then a masked label is an error);
otherwise each class is an independent binary problem (multi-label, including a one-class binary task).
Files on disk and their run records: `benchmark.core.runs`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.schema import ATTRIBUTE_COLUMNS, EVALUATED_SPLITS, LABEL_PREFIX, PROBABILITY_PREFIX, SEXES

GROUP_COLUMNS = ("patient_id", "sex", "age")
EXTRA_GROUP_COLUMNS = tuple(ATTRIBUTE_COLUMNS)
"""Optional group columns (race, insurance) that the leaderboard passes to the fairness engine when present."""
PROBABILITY_TOLERANCE = 1e-6
SUM_TOLERANCE = 1e-3
"""How far a single-label row's probabilities may sum from 1 (float32 softmax outputs, rounding in CSV files)."""


# ----------------------------------------------------------------------------------------------- frame


def prediction_classes(frame: pl.DataFrame) -> tuple[str, ...]:
    """The classes of a prediction frame, in the order of its `p_` columns."""
    return tuple(c[len(PROBABILITY_PREFIX):] for c in frame.columns if c.startswith(PROBABILITY_PREFIX))


def infer_task_kind(frame: pl.DataFrame, recorded: str | None = None) -> str:
    """"single" or "multi": the run record's `task_kind` when given, else inferred from the `y_` columns."""
    if recorded in ("single", "multi"):
        return recorded
    classes = prediction_classes(frame)
    if len(classes) < 2 or frame.height == 0 or masked_count(frame):
        return "multi"
    positives = frame.select(pl.sum_horizontal([pl.col(LABEL_PREFIX + c) for c in classes])).to_series()
    return "single" if bool((positives == 1).all()) else "multi"


def masked_count(frame: pl.DataFrame, split: str | None = None) -> dict[str, int]:
    """Masked (null) labels per class, of the rows of `split` (every row when None); only classes with some."""
    rows = frame if split is None else frame.filter(pl.col("split") == split)
    counts = {c: rows[LABEL_PREFIX + c].null_count() for c in prediction_classes(frame)
              if LABEL_PREFIX + c in rows.columns}
    return {c: n for c, n in counts.items() if n}


def prediction_frame(rows: pl.DataFrame, probabilities: np.ndarray, classes) -> pl.DataFrame:
    """Build a prediction frame from task rows (`image_id`, `patient_id`, `sex`, `age`, `split`, `y_*`, and
    `race` / `insurance` where the rows have any value) and an [n, C] probability array in the order of `classes`."""
    classes = tuple(classes)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (rows.height, len(classes)):
        raise BenchError(
            f"probabilities have shape {probabilities.shape}, expected ({rows.height}, {len(classes)}) "
            f"for {rows.height} rows and classes {list(classes)}"
        )
    base = rows.select(
        pl.col("image_id").cast(pl.Utf8),
        pl.col("patient_id").cast(pl.Utf8),
        pl.col("sex").cast(pl.Utf8),
        pl.col("age").cast(pl.Float64),
        *[pl.col(name).cast(pl.Utf8) for name in EXTRA_GROUP_COLUMNS
          if name in rows.columns and rows[name].null_count() < rows.height],
        pl.col("split").cast(pl.Utf8),
        *[pl.col(LABEL_PREFIX + c).cast(pl.Int8) for c in classes],
    )
    return base.with_columns(
        [pl.Series(PROBABILITY_PREFIX + c, probabilities[:, i]) for i, c in enumerate(classes)]
    )


def _first_bad(frame: pl.DataFrame, mask: pl.Series) -> str:
    """Describe the first row where `mask` is true: its position and image id."""
    position = int(mask.arg_true()[0])
    image_id = frame["image_id"][position] if "image_id" in frame.columns else "?"
    return f"row {position} (image_id {image_id!r})"


def validate_predictions(frame: pl.DataFrame, *, source: str = "predictions") -> pl.DataFrame:
    """Check a prediction frame and return it with canonical dtypes; raise BenchError naming the problem.

    `source` names the file (or producer) in error messages.
    """
    if not isinstance(frame, pl.DataFrame):
        raise BenchError(f"{source}: expected a polars DataFrame of predictions, got {type(frame).__name__}")
    for column in ("image_id", "split"):
        if column not in frame.columns:
            raise BenchError(
                f"{source}: missing column {column!r}; a prediction file needs image_id, split, "
                f"y_<class> and p_<class> columns (see docs/CONTRACTS.md)"
            )
    classes = prediction_classes(frame)
    if not classes:
        raise BenchError(f"{source}: no probability columns; add one p_<class> column per class")
    label_classes = tuple(c[len(LABEL_PREFIX):] for c in frame.columns if c.startswith(LABEL_PREFIX))
    missing_labels = [c for c in classes if c not in label_classes]
    if missing_labels:
        raise BenchError(
            f"{source}: probability column(s) {['p_' + c for c in missing_labels]} have no label column "
            f"{['y_' + c for c in missing_labels]}; add the 0/1 labels (or join them from the manifest)"
        )
    extra_labels = [c for c in label_classes if c not in classes]
    if extra_labels:
        raise BenchError(
            f"{source}: label column(s) {['y_' + c for c in extra_labels]} have no probability column; "
            f"add {['p_' + c for c in extra_labels]} or drop those labels"
        )
    if frame.height == 0:
        raise BenchError(f"{source}: no rows; a run holds the predictions for the val and test images")

    casts = []
    image_id = frame["image_id"]
    if image_id.dtype != pl.Utf8:
        casts.append(pl.col("image_id").cast(pl.Utf8))
        image_id = image_id.cast(pl.Utf8)
    if image_id.null_count():
        raise BenchError(f"{source}: image_id is empty at {_first_bad(frame, image_id.is_null())}")
    duplicated = image_id.is_duplicated()
    if duplicated.any():
        first = _first_bad(frame, duplicated)
        raise BenchError(
            f"{source}: duplicate image_id at {first}; {int(duplicated.sum())} rows share an id — "
            f"write one row per image"
        )

    split = frame["split"].cast(pl.Utf8)
    bad_split = split.is_null() | ~split.is_in(list(EVALUATED_SPLITS))
    if bad_split.any():
        value = split[int(bad_split.arg_true()[0])]
        raise BenchError(
            f"{source}: unknown split {value!r} at {_first_bad(frame, bad_split)}; "
            f"predictions hold only {' and '.join(EVALUATED_SPLITS)} rows"
        )
    casts.append(pl.col("split").cast(pl.Utf8))

    for c in classes:
        casts.extend(_check_label(frame, LABEL_PREFIX + c, source))
        casts.extend(_check_probability(frame, PROBABILITY_PREFIX + c, source))
    casts.extend(_check_groups(frame, source))
    return frame.with_columns(casts)


def _check_label(frame: pl.DataFrame, column: str, source: str) -> list[pl.Expr]:
    series = frame[column]
    if series.dtype == pl.Boolean:
        series = series.cast(pl.Int8)
    if not (series.dtype.is_integer() or series.dtype.is_float()):
        raise BenchError(f"{source}: column {column!r} has type {series.dtype}; labels must be 0/1 integers")
    if series.null_count() == series.len():
        raise BenchError(f"{source}: label {column!r} is empty in every row; give the 0/1 labels (a blank is a masked "
                         "label, and a class needs some known ones) or drop the class's y_ and p_ columns")
    bad = ~series.cast(pl.Float64).is_in([0.0, 1.0]).fill_null(True) & series.is_not_null()  # null: masked
    if bad.any():
        value = series[int(bad.arg_true()[0])]
        raise BenchError(f"{source}: label {column!r} is {value!r} at {_first_bad(frame, bad)}; labels are 0 or 1")
    return [pl.col(column).cast(pl.Int8)]


def _check_probability(frame: pl.DataFrame, column: str, source: str) -> list[pl.Expr]:
    series = frame[column]
    if not (series.dtype.is_float() or series.dtype.is_integer()):
        raise BenchError(f"{source}: column {column!r} has type {series.dtype}; probabilities must be numbers")
    series = series.cast(pl.Float64)
    if series.null_count():
        raise BenchError(f"{source}: probability {column!r} is empty at {_first_bad(frame, series.is_null())}")
    nan = series.is_nan()
    if nan.any():
        raise BenchError(f"{source}: probability {column!r} is NaN at {_first_bad(frame, nan)}")
    outside = (series < -PROBABILITY_TOLERANCE) | (series > 1 + PROBABILITY_TOLERANCE)
    if outside.any():
        value = series[int(outside.arg_true()[0])]
        raise BenchError(
            f"{source}: probability {column!r} is {value!r} at {_first_bad(frame, outside)}, outside [0, 1]; "
            f"write probabilities (apply softmax or sigmoid to scores), not logits"
        )
    return [pl.col(column).cast(pl.Float64).clip(0.0, 1.0)]


def _check_groups(frame: pl.DataFrame, source: str) -> list[pl.Expr]:
    casts = []
    if "patient_id" in frame.columns:
        casts.append(pl.col("patient_id").cast(pl.Utf8))
    if "sex" in frame.columns:
        sex = frame["sex"].cast(pl.Utf8)
        bad = sex.is_not_null() & ~sex.is_in(list(SEXES))
        if bad.any():
            value = sex[int(bad.arg_true()[0])]
            raise BenchError(f"{source}: sex is {value!r} at {_first_bad(frame, bad)}; use 'F', 'M' or null")
        casts.append(pl.col("sex").cast(pl.Utf8))
    if "age" in frame.columns:
        age = frame["age"]
        if not (age.dtype.is_float() or age.dtype.is_integer() or age.dtype == pl.Null):
            raise BenchError(f"{source}: column 'age' has type {age.dtype}; ages are numbers of years or null")
        age = age.cast(pl.Float64)
        bad = (age.is_nan() | (age < 0)).fill_null(False)
        if bad.any():
            value = age[int(bad.arg_true()[0])]
            raise BenchError(f"{source}: age is {value!r} at {_first_bad(frame, bad)}; use years >= 0 or null")
        casts.append(pl.col("age").cast(pl.Float64))
    for name, allowed in ATTRIBUTE_COLUMNS.items():
        if name in frame.columns:
            values = frame[name].cast(pl.Utf8)
            bad = values.is_not_null() & ~values.is_in(list(allowed))
            if bad.any():
                raise BenchError(f"{source}: {name} is {values[int(bad.arg_true()[0])]!r} at {_first_bad(frame, bad)}; "
                                 f"use one of {list(allowed)} or null (unknown)")
            casts.append(pl.col(name).cast(pl.Utf8))
    return casts


def check_single_label_sums(frame: pl.DataFrame, *, source: str = "predictions") -> None:
    """A single-label run has no masked label and its probabilities are a softmax: every row sums to 1
    (BenchError naming the first row that does not, and what to do)."""
    classes = prediction_classes(frame)
    for c in classes:
        masked = frame[LABEL_PREFIX + c].is_null()
        if masked.any():
            raise BenchError(
                f"{source}: label {LABEL_PREFIX + c!r} is empty (masked) at {_first_bad(frame, masked)}; a "
                "single-label task has one known class per row. Drop images without a label, or write the file "
                "from a multi-label task (only multi-label tasks mask labels)."
            )
    totals = frame.select(pl.sum_horizontal([pl.col(PROBABILITY_PREFIX + c) for c in classes])).to_series()
    bad = (totals - 1.0).abs() > SUM_TOLERANCE
    if bad.any():
        position = int(bad.arg_true()[0])
        raise BenchError(
            f"{source}: the probabilities of {_first_bad(frame, bad)} sum to {totals[position]:.4g}, not 1; a "
            f"single-label task (one y_ = 1 per row) needs softmax probabilities over its {len(classes)} classes. "
            "Write softmax outputs, or, if the classes are independent (multi-label), write the file from a "
            "multi-label task (its run record says task_kind 'multi')."
        )


def extra_group_values(rows: pl.DataFrame) -> dict[str, list | None]:
    """The race / insurance values of `rows` for the fairness engine's `columns`: one value per row (None:
    unknown), or None for a column the rows do not carry or hold no value in."""
    return {name: rows[name].to_list() if name in rows.columns and rows[name].null_count() < rows.height else None
            for name in EXTRA_GROUP_COLUMNS}


def unknown_group_values(frame: pl.DataFrame, attributes) -> list[str]:
    """One line per requested extra attribute (race, insurance; intersections count) with unknown values in the
    test rows: those images are left out of that attribute's groups, never merged into one."""
    test = frame.filter(pl.col("split") == "test")
    wanted = {part for attribute in attributes for part in str(attribute).split("_")}
    return [f"{name} unknown for {test[name].null_count()} of {test.height} test images; they are left out of the "
            f"{name} groups (never merged into one)" for name in EXTRA_GROUP_COLUMNS
            if name in wanted and name in test.columns and 0 < test[name].null_count() < test.height]
