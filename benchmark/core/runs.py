"""Runs on disk: one Parquet prediction file per run, its `RunRecord` (typed metadata) inside it.

A run lives at `<workdir>/runs/<task>/<run-id>/predictions.parquet` (the frame of `benchmark.core.predictions`);
its record is JSON in the Parquet key-value metadata under the key `cxr_fairbench`. Every method (heads,
fine-tuning, mitigation) writes a `RunRecord`, and every reader gets one back, typed: files written by
earlier versions read with defaults for the fields they lack, and fields a record does not name
(method-specific: `fit_seconds`, `best_epoch`, `history`, ...) are kept in `details` and written back at the
top level, where earlier versions put them. A file without a record (an outside tool's output, also
accepted as CSV) reads with `method: "external"`.

`new_run_path` reserves a fresh run id (UTC timestamp + encoder + method + short random hash), and
`write_predictions` refuses to replace an existing file unless `force=True`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benchmark.core.atomic import atomic_output
from benchmark.core.errors import BenchError
from benchmark.core.identity import finite_or_none
from benchmark.core.predictions import (
    check_single_label_sums,
    infer_task_kind,
    prediction_classes,
    validate_predictions,
)
from benchmark.core.schema import RANDOM_INIT
from benchmark.core.versions import package_versions
from benchmark.core.workdir import PREDICTIONS_FILE, Workdir, check_name

METADATA_KEY = "cxr_fairbench"
SCHEMA_VERSION = 1
EXTERNAL = "external"
REQUIRED = ("run_id", "encoder", "method", "task")


@dataclass
class RunRecord:
    """What one run is: who made the predictions, how, on what (written by every method, read back typed)."""

    run_id: str
    encoder: str
    method: str
    task: str
    task_kind: str = ""
    classes: tuple[str, ...] = ()
    seed: int | None = None
    weights_tag: str = ""
    weights_digest: str = ""
    random_init: bool | None = None
    dataset: str | None = None
    test_dataset: str | None = None
    """The registered dataset whose test split the predictions' test rows come from, when it is not `dataset`
    (out-of-distribution evaluation: fitted on `dataset`, tested on `test_dataset`); None: the same dataset."""
    experiment: str | None = None
    """The `bench run` experiment that made the run (None: made by a single command, or by an older version)."""
    ensemble: list = field(default_factory=list)
    """An ensemble's members ({"weights_tag", "weights_digest", "store_identity"} each), whose probabilities the run
    averages; then `weights_digest` is the ensemble's (`cache.ensemble.ensemble_digest`). Empty: one checkpoint."""
    task_params: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    manifest_digest: str | None = None
    store_identity: str | None = None
    rows: dict | None = None
    excluded_images: int | None = None
    versions: dict = field(default_factory=dict)
    created: str = ""
    schema_version: int = SCHEMA_VERSION
    details: dict = field(default_factory=dict)
    """Method-specific fields (e.g. `fit_seconds`, `best_epoch`, `history`), stored at the top level."""

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        if self.random_init is None and self.weights_tag:
            self.random_init = self.weights_tag == RANDOM_INIT

    @property
    def is_external(self) -> bool:
        return self.method == EXTERNAL

    def to_json(self) -> dict:
        """The record as the JSON object stored in the file (details at the top level; NaN -> null)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "details"}
        clash = sorted(set(self.details) & set(values))
        if clash:
            raise BenchError(f"run {self.run_id}: details {clash} shadow record fields; rename them")
        return finite_or_none({**values, **self.details})

    @classmethod
    def from_json(cls, values: dict) -> "RunRecord":
        """A record from stored JSON; unknown keys go to `details`, missing ones take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)} - {"details"}
        known = {key: value for key, value in values.items() if key in names}
        details = {key: value for key, value in values.items() if key not in names}
        for key in ("task_params", "hyperparameters", "chosen", "versions", "ensemble"):
            if known.get(key) is None:
                known.pop(key, None)
        known.setdefault("run_id", "")
        known.setdefault("encoder", "")
        known.setdefault("method", EXTERNAL)
        known.setdefault("task", "")
        return cls(**known, details=details)

    @classmethod
    def external(cls, run_id: str) -> "RunRecord":
        """The record of a file written by another tool (no metadata)."""
        return cls(run_id=run_id, encoder=EXTERNAL, method=EXTERNAL, task="")


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _complete(record: RunRecord, frame: pl.DataFrame, path: Path) -> RunRecord:
    """The record with run id, classes, task kind, time and versions filled in, checked against the frame."""
    record = dataclasses.replace(record, details=dict(record.details))
    record.run_id = record.run_id or path.parent.name
    missing = [key for key in REQUIRED if not getattr(record, key)]
    if missing:
        raise BenchError(f"the run record for {path} lacks {missing}; every run records {list(REQUIRED)}")
    check_name("method", record.method)
    classes = prediction_classes(frame)
    if record.classes and record.classes != classes:
        raise BenchError(
            f"the run record for {path} lists classes {list(record.classes)} but the frame has "
            f"p_ columns for {list(classes)}; they must match in order"
        )
    record.classes = classes
    record.task_kind = record.task_kind or infer_task_kind(frame)
    if record.task_kind == "single":
        check_single_label_sums(frame, source=str(path))
    record.created = record.created or _utc_now().isoformat(timespec="seconds")
    record.versions = record.versions or package_versions()
    record.schema_version = SCHEMA_VERSION
    return record


def write_predictions(path, frame: pl.DataFrame, record: RunRecord, *, force: bool = False) -> Path:
    """Validate and write one run atomically; returns the path. An existing file is replaced only with `force`."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.exists() and not force:
        raise BenchError(
            f"{path} already exists; a run is never overwritten silently — use a new run id "
            f"(benchmark.core.runs.new_run_path) or pass force=True (--force) to replace it"
        )
    frame = validate_predictions(frame, source=str(path))
    record = _complete(record, frame, path)
    try:
        encoded = json.dumps(record.to_json(), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BenchError(f"the run record for {path} is not plain JSON ({error}); store numbers, strings, lists") from None
    table = frame.to_arrow()
    schema_metadata = dict(table.schema.metadata or {})
    schema_metadata[METADATA_KEY.encode()] = encoded.encode()
    try:
        with atomic_output(path) as temporary:
            pq.write_table(table.replace_schema_metadata(schema_metadata), temporary)
    except BaseException:
        if path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()  # the run folder `new_run_path` reserved for this file: leave nothing behind
        raise
    return path


def read_predictions(path) -> tuple[pl.DataFrame, RunRecord]:
    """Read and validate one run (Parquet, or CSV from an outside tool) -> (frame, record)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"prediction file {path} not found; `bench runs` lists the runs in the workdir")
    if path.suffix.lower() == ".csv":
        frame, stored = _read_csv(path), None
    else:
        frame, stored = _read_parquet(path)
    frame = validate_predictions(frame, source=str(path))
    if stored is None:
        record = RunRecord.external(path.parent.name if path.name == PREDICTIONS_FILE else path.stem)
    else:
        record = RunRecord.from_json(stored)
    record.classes = record.classes or prediction_classes(frame)
    record.task_kind = record.task_kind or infer_task_kind(frame)
    if record.task_kind == "single":
        check_single_label_sums(frame, source=str(path))
    return frame, record


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(
            path, schema_overrides={"image_id": pl.Utf8, "patient_id": pl.Utf8, "sex": pl.Utf8, "split": pl.Utf8}
        )
    except (pl.exceptions.PolarsError, OSError) as error:
        raise BenchError(f"cannot read {path} as CSV ({error})") from None


def _read_parquet(path: Path) -> tuple[pl.DataFrame, dict | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise BenchError(f"cannot read {path} as Parquet ({error}); is it a prediction file?") from None
    stored = _decode(table.schema.metadata, path)
    return pl.from_arrow(table.replace_schema_metadata(None)), stored


def _decode(schema_metadata, path: Path) -> dict | None:
    raw = (schema_metadata or {}).get(METADATA_KEY.encode())
    if raw is None:
        return None
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BenchError(f"{path}: run metadata under {METADATA_KEY!r} is not valid JSON ({error})") from None
    if not isinstance(decoded, dict):
        raise BenchError(f"{path}: run metadata under {METADATA_KEY!r} is not a JSON object")
    return decoded


def read_run_record(path) -> RunRecord | None:
    """The record of a Parquet prediction file without reading its rows (None when it has none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise BenchError(f"cannot read {path} as Parquet ({error})") from None
    stored = _decode(schema.metadata, path)
    return None if stored is None else RunRecord.from_json(stored)


def new_run_id(encoder: str, method: str) -> str:
    """A fresh run id: UTC timestamp, encoder, method and an 8-hex random hash."""
    stamp = _utc_now().strftime("%Y%m%dT%H%M%SZ")
    token = hashlib.sha256(f"{stamp}|{encoder}|{method}|{os.getpid()}|{uuid.uuid4()}".encode()).hexdigest()[:8]
    return f"{stamp}-{encoder}-{method}-{token}"


def new_run_path(workdir, task: str, encoder: str, method: str) -> Path:
    """Reserve a new run folder `<workdir>/runs/<task>/<run-id>/` and return its predictions path."""
    workdir = Workdir.of(workdir)
    check_name("encoder", encoder)
    check_name("method", method)
    folder = workdir.task_runs_dir(task)
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        path = workdir.predictions_path(task, new_run_id(encoder, method))
        try:
            path.parent.mkdir()
        except FileExistsError:
            continue
        return path


@dataclass(frozen=True)
class RunSummary:
    """One prediction run as `bench runs` lists it (`problem` set when the file or its record is unreadable)."""

    path: Path
    run_id: str
    task: str
    record: RunRecord | None = None
    rows: int = 0
    problem: str = ""

    def as_dict(self) -> dict:
        record = self.record or RunRecord.external(self.run_id)
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            "task": self.task,
            "method": record.method if self.record else "",
            "encoder": record.encoder if self.record else "",
            "weights_tag": record.weights_tag,
            "seed": record.seed,
            "experiment": record.experiment,
            "created": record.created,
            "rows": self.rows,
            "problem": self.problem,
        }


def list_runs(workdir, task: str | None = None) -> list[RunSummary]:
    """All runs under `<workdir>/runs/` (optionally of one task), oldest first.

    Files that cannot be read are listed with `problem` set rather than left out.
    """
    import pyarrow.parquet as pq

    workdir = Workdir.of(workdir)
    root = workdir.task_runs_dir(task) if task is not None else workdir.runs_dir
    pattern = f"*/{PREDICTIONS_FILE}" if task is not None else f"*/*/{PREDICTIONS_FILE}"
    summaries = []
    for path in sorted(root.glob(pattern)) if root.is_dir() else []:
        run_task = path.parent.parent.name
        try:
            record = read_run_record(path)
            rows = pq.ParquetFile(path).metadata.num_rows
        except BenchError as error:
            summaries.append(RunSummary(path=path, run_id=path.parent.name, task=run_task, problem=str(error)))
            continue
        if record is None:
            summaries.append(RunSummary(path=path, run_id=path.parent.name, task=run_task, rows=rows,
                                        problem=f"no {METADATA_KEY!r} metadata (an outside tool's file?)"))
            continue
        summaries.append(RunSummary(path=path, run_id=record.run_id or path.parent.name, task=record.task or run_task,
                                    record=record, rows=rows))
    return sorted(summaries, key=lambda s: (s.record.created if s.record else "", s.run_id))
