"""The one prediction schema that every method writes and the leaderboard reads.

A run is one Parquet file, one row per image of the val and test splits:

    image_id     Utf8, unique, never null            the manifest's image id (join key to the manifest)
    patient_id   Utf8 (null allowed)                 optional in files from outside tools
    sex          Utf8 "F" / "M" / null               optional in files from outside tools
    age          Float64 years / null                optional in files from outside tools
    split        Utf8 "val" / "test"
    y_<class>    Int8 0/1, never null                one per class, in the task's class order
    p_<class>    Float64 in [0, 1], never NaN         one per class, same classes as the y_ columns

Extra columns are kept and ignored. The task is single-label (softmax, argmax decides) when every row has
exactly one positive across two or more `y_` columns, or when the metadata says `task_kind: "single"`;
otherwise each class is an independent binary problem (multi-label, including a one-class binary task).

Run metadata is JSON in the Parquet key-value metadata under the key `cxr_fairbench`: `run_id`, `encoder`,
`weights_tag`, `weights_digest` (or "random-init"), `method` (one of `METHODS`), `task`, `task_kind`,
`classes`, `seed`, `hyperparameters`, `chosen` (values picked on val), `store_identity`,
`manifest_digest`, `versions`, `created`, plus method-specific fields. A file without that key (an outside
tool's output, also accepted as CSV) reads with `method: "external"`.

Runs live at `<workdir>/runs/<task>/<run-id>/predictions.parquet`; `new_run_path` reserves a fresh run id
(UTC timestamp + encoder + method + short random hash), and `write_predictions` refuses to replace an
existing file unless `force=True`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import uuid
from dataclasses import dataclass, field
from importlib import metadata as _importlib_metadata
from pathlib import Path

import numpy as np
import polars as pl

from benchmark.errors import BenchError

METADATA_KEY = "cxr_fairbench"
SCHEMA_VERSION = 1
METHODS = ("zeroshot", "linear", "seed-linear", "mlp", "lora", "full", "external")
SPLITS = ("val", "test")
SEXES = ("F", "M")
GROUP_COLUMNS = ("patient_id", "sex", "age")
LABEL_PREFIX = "y_"
PROBABILITY_PREFIX = "p_"
FILE_NAME = "predictions.parquet"
REQUIRED_METADATA = ("run_id", "encoder", "method", "task")
PROBABILITY_TOLERANCE = 1e-6
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


# ----------------------------------------------------------------------------------------------- frame


def prediction_classes(frame: pl.DataFrame) -> tuple[str, ...]:
    """The classes of a prediction frame, in the order of its `p_` columns."""
    return tuple(c[len(PROBABILITY_PREFIX):] for c in frame.columns if c.startswith(PROBABILITY_PREFIX))


def infer_task_kind(frame: pl.DataFrame, metadata: dict | None = None) -> str:
    """"single" or "multi": the metadata's `task_kind` if given, else inferred from the `y_` columns."""
    if metadata and metadata.get("task_kind") in ("single", "multi"):
        return metadata["task_kind"]
    classes = prediction_classes(frame)
    if len(classes) < 2 or frame.height == 0:
        return "multi"
    positives = frame.select(pl.sum_horizontal([pl.col(LABEL_PREFIX + c) for c in classes])).to_series()
    return "single" if bool((positives == 1).all()) else "multi"


def prediction_frame(rows: pl.DataFrame, probabilities: np.ndarray, classes) -> pl.DataFrame:
    """Build a prediction frame from task rows (`image_id`, `patient_id`, `sex`, `age`, `split`, `y_*`)
    and an [n, C] probability array in the order of `classes`."""
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
                f"y_<class> and p_<class> columns (see benchmark/predictions.py)"
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
    bad_split = split.is_null() | ~split.is_in(list(SPLITS))
    if bad_split.any():
        value = split[int(bad_split.arg_true()[0])]
        raise BenchError(
            f"{source}: unknown split {value!r} at {_first_bad(frame, bad_split)}; "
            f"predictions hold only {' and '.join(SPLITS)} rows"
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
    if series.null_count():
        raise BenchError(
            f"{source}: label {column!r} is empty at {_first_bad(frame, series.is_null())}; "
            f"drop images without a label before writing predictions"
        )
    bad = ~series.cast(pl.Float64).is_in([0.0, 1.0])
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
    return casts


# ----------------------------------------------------------------------------------------------- files


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a run's numbers."""
    versions = {"python": platform.python_version()}
    for name in ("cxr-fairbench", "torch", "numpy", "scikit-learn", "polars", "pyarrow", "open_clip_torch"):
        try:
            versions[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def write_predictions(path, frame: pl.DataFrame, metadata: dict, *, force: bool = False) -> Path:
    """Validate and write one run; returns the path.

    `metadata` needs `run_id` (defaults to the run folder's name), `encoder`, `method` and `task`;
    `classes`, `task_kind`, `created`, `versions` and `schema_version` are filled in when absent.
    An existing file is never replaced unless `force=True`.
    """
    path = Path(path)
    if path.exists() and not force:
        raise BenchError(
            f"{path} already exists; a run is never overwritten silently — use a new run id "
            f"(benchmark.predictions.new_run_path) or pass force=True (--force) to replace it"
        )
    frame = validate_predictions(frame, source=str(path))
    metadata = dict(metadata)
    metadata.setdefault("run_id", path.parent.name)
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key)]
    if missing:
        raise BenchError(f"run metadata for {path} lacks {missing}; every run records {list(REQUIRED_METADATA)}")
    if metadata["method"] not in METHODS:
        raise BenchError(f"unknown method {metadata['method']!r} for {path}; expected one of {list(METHODS)}")
    classes = list(prediction_classes(frame))
    if "classes" in metadata and list(metadata["classes"]) != classes:
        raise BenchError(
            f"run metadata for {path} lists classes {list(metadata['classes'])} but the frame has "
            f"p_ columns for {classes}; they must match in order"
        )
    metadata["classes"] = classes
    metadata.setdefault("task_kind", infer_task_kind(frame))
    metadata.setdefault("created", _utc_now().isoformat(timespec="seconds"))
    metadata.setdefault("versions", package_versions())
    metadata["schema_version"] = SCHEMA_VERSION
    try:
        encoded = json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BenchError(f"run metadata for {path} is not plain JSON ({error}); store numbers, strings, lists") from None

    import pyarrow.parquet as pq

    table = frame.to_arrow()
    schema_metadata = dict(table.schema.metadata or {})
    schema_metadata[METADATA_KEY.encode()] = encoded.encode()
    table = table.replace_schema_metadata(schema_metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_predictions(path) -> tuple[pl.DataFrame, dict]:
    """Read and validate one run (Parquet, or CSV from an outside tool) -> (frame, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"prediction file {path} not found; `bench runs` lists the runs in the workdir")
    if path.suffix.lower() == ".csv":
        try:
            frame = pl.read_csv(
                path, schema_overrides={"image_id": pl.Utf8, "patient_id": pl.Utf8, "sex": pl.Utf8, "split": pl.Utf8}
            )
        except (pl.exceptions.PolarsError, OSError) as error:
            raise BenchError(f"cannot read {path} as CSV ({error})") from None
        metadata = {}
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as error:
            raise BenchError(f"cannot read {path} as Parquet ({error}); is it a prediction file?") from None
        metadata = _decode_metadata(table.schema.metadata, path)
        frame = pl.from_arrow(table.replace_schema_metadata(None))
    frame = validate_predictions(frame, source=str(path))
    if not metadata:
        metadata = {"run_id": path.parent.name if path.name == FILE_NAME else path.stem, "method": "external"}
    metadata.setdefault("classes", list(prediction_classes(frame)))
    metadata.setdefault("task_kind", infer_task_kind(frame))
    return frame, metadata


def _decode_metadata(schema_metadata, path: Path) -> dict:
    raw = (schema_metadata or {}).get(METADATA_KEY.encode())
    if raw is None:
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BenchError(f"{path}: run metadata under {METADATA_KEY!r} is not valid JSON ({error})") from None
    if not isinstance(decoded, dict):
        raise BenchError(f"{path}: run metadata under {METADATA_KEY!r} is not a JSON object")
    return decoded


def read_run_metadata(path) -> dict:
    """The run metadata of a Parquet prediction file, without reading its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise BenchError(f"cannot read {path} as Parquet ({error})") from None
    return _decode_metadata(schema.metadata, path)


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME_PATTERN.match(value):
        raise BenchError(
            f"{kind} name {value!r} cannot be used in a run path; use letters, digits, '.', '_', '+', '-'"
        )
    return value


def new_run_id(encoder: str, method: str) -> str:
    """A fresh run id: UTC timestamp, encoder, method and an 8-hex random hash."""
    stamp = _utc_now().strftime("%Y%m%dT%H%M%SZ")
    token = hashlib.sha256(f"{stamp}|{encoder}|{method}|{os.getpid()}|{uuid.uuid4()}".encode()).hexdigest()[:8]
    return f"{stamp}-{encoder}-{method}-{token}"


def runs_root(workdir) -> Path:
    return Path(workdir) / "runs"


def new_run_path(workdir, task: str, encoder: str, method: str) -> Path:
    """Reserve a new run folder `<workdir>/runs/<task>/<run-id>/` and return its predictions path."""
    _check_name("task", task)
    _check_name("encoder", encoder)
    _check_name("method", method)
    folder = runs_root(workdir) / task
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        run_folder = folder / new_run_id(encoder, method)
        try:
            run_folder.mkdir()
        except FileExistsError:
            continue
        return run_folder / FILE_NAME


@dataclass(frozen=True)
class RunSummary:
    """One prediction run as `bench runs` lists it (`problem` set when the file cannot be read)."""

    path: Path
    run_id: str
    task: str
    method: str = ""
    encoder: str = ""
    weights_tag: str = ""
    seed: int | None = None
    created: str = ""
    rows: int = 0
    metadata: dict = field(default_factory=dict, repr=False)
    problem: str = ""

    def as_dict(self) -> dict:
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            "task": self.task,
            "method": self.method,
            "encoder": self.encoder,
            "weights_tag": self.weights_tag,
            "seed": self.seed,
            "created": self.created,
            "rows": self.rows,
            "problem": self.problem,
        }


def list_runs(workdir, task: str | None = None) -> list[RunSummary]:
    """All runs under `<workdir>/runs/` (optionally of one task), oldest first.

    Files that cannot be read are listed with `problem` set rather than left out.
    """
    import pyarrow.parquet as pq

    root = runs_root(workdir)
    if task is not None:
        _check_name("task", task)
        pattern = f"{task}/*/{FILE_NAME}"
    else:
        pattern = f"*/*/{FILE_NAME}"
    summaries = []
    for path in sorted(root.glob(pattern)) if root.is_dir() else []:
        run_task = path.parent.parent.name
        try:
            metadata = read_run_metadata(path)
            rows = pq.ParquetFile(path).metadata.num_rows
        except BenchError as error:
            summaries.append(RunSummary(path=path, run_id=path.parent.name, task=run_task, problem=str(error)))
            continue
        summaries.append(
            RunSummary(
                path=path,
                run_id=metadata.get("run_id", path.parent.name),
                task=metadata.get("task", run_task),
                method=metadata.get("method", "external"),
                encoder=metadata.get("encoder", ""),
                weights_tag=metadata.get("weights_tag", ""),
                seed=metadata.get("seed"),
                created=metadata.get("created", ""),
                rows=rows,
                metadata=metadata,
                problem="" if metadata else f"no {METADATA_KEY!r} metadata (an outside tool's file?)",
            )
        )
    return sorted(summaries, key=lambda s: (s.created, s.run_id))
