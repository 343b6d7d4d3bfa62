"""The canonical manifest: one row per image, the same columns for every dataset.

Columns, in order: `image_id`, `path` (relative to the dataset root, posix), `patient_id`, `sex` ("F"/"M"/null),
`age` (years, null when invalid), `view`, `split` ("train"/"val"/"test"), then one Int8 column per name in
`ALL_LABEL_COLUMNS`: 1, 0, or null (uncertain and masked, or a finding the dataset does not label: NIH leaves
the CheXpert-only columns null, CheXpert and MIMIC the NIH-only ones), then `race` (one of `RACES` or null) and
`insurance` (one of `INSURANCES` or null), last so that the columns of earlier versions keep their positions. `manifest_digest` fingerprints a manifest so that caches built from it
are reused only for exactly the same rows.

Manifests written before `race`, `insurance` and the CheXpert-only label columns existed are upgraded on read
(`upgrade_manifest`: the missing optional columns added as null); such all-null optional columns do not enter
the digest, so an upgraded manifest keeps the digest it was registered (and its stores built) with.
"""

from __future__ import annotations

import hashlib
import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.schema import ALL_LABEL_COLUMNS, ATTRIBUTE_COLUMNS, LABEL_COLUMNS, SEXES, SPLITS

META_SCHEMA: dict[str, pl.DataType] = {
    "image_id": pl.Utf8,
    "path": pl.Utf8,
    "patient_id": pl.Utf8,
    "sex": pl.Utf8,
    "age": pl.Float64,
    "view": pl.Utf8,
    "split": pl.Utf8,
}
ATTRIBUTE_SCHEMA: dict[str, pl.DataType] = {name: pl.Utf8 for name in ATTRIBUTE_COLUMNS}
MANIFEST_SCHEMA: dict[str, pl.DataType] = {**META_SCHEMA, **{name: pl.Int8 for name in ALL_LABEL_COLUMNS}, **ATTRIBUTE_SCHEMA}
MANIFEST_COLUMNS: tuple[str, ...] = tuple(MANIFEST_SCHEMA)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(ATTRIBUTE_COLUMNS) + tuple(n for n in ALL_LABEL_COLUMNS if n not in LABEL_COLUMNS)
"""Columns added after the first manifest version: missing ones are added as null on read, and while they hold
no value they do not enter the digest."""


def _first(values, limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(value) for value in values[:limit])
    return shown + (f" ... ({len(values)} in all)" if len(values) > limit else "")


def validate_manifest(frame: pl.DataFrame, *, source: str = "manifest") -> pl.DataFrame:
    """Check `frame` against the canonical schema and invariants; return it unchanged or raise BenchError.

    Checks: column names, order and dtypes; unique non-null image ids; non-null paths and patients; relative
    paths that stay inside the root; sex in F/M/null; age in 0-120 or null; split values; race and insurance
    in their groups or null; labels 1/0/null; no patient in more than one split.
    """
    if tuple(frame.columns) != MANIFEST_COLUMNS:
        missing = [name for name in MANIFEST_COLUMNS if name not in frame.columns]
        extra = [name for name in frame.columns if name not in MANIFEST_SCHEMA]
        raise BenchError(
            f"{source}: columns do not match the canonical manifest (missing: {missing or 'none'}, "
            f"unexpected: {extra or 'none'}; order must be {list(MANIFEST_COLUMNS)}). "
            "Rebuild it with the dataset adapter (e.g. `bench data check --dataset nih --root DIR --register nih`)."
        )
    wrong = [f"{name} is {frame.schema[name]}, expected {dtype}" for name, dtype in MANIFEST_SCHEMA.items() if frame.schema[name] != dtype]
    if wrong:
        raise BenchError(f"{source}: wrong column types ({'; '.join(wrong)}). Cast them, or rebuild the manifest with the dataset adapter.")
    for name in ("image_id", "path", "patient_id", "split"):
        nulls = frame[name].null_count()
        if nulls:
            raise BenchError(f"{source}: {nulls} rows have no {name}; every row needs one.")
    duplicated = frame.filter(pl.col("image_id").is_duplicated())["image_id"].unique(maintain_order=True)
    if len(duplicated):
        raise BenchError(f"{source}: duplicate image ids {_first(duplicated)}; each image must appear once.")
    escaping = frame.filter(escapes_root(pl.col("path")))["path"]
    if len(escaping):
        raise BenchError(f"{source}: paths that would leave the dataset root: {_first(escaping)}. Paths must be relative and stay inside it.")
    bad_sex = frame.filter(pl.col("sex").is_not_null() & ~pl.col("sex").is_in(SEXES))["sex"].unique()
    if len(bad_sex):
        raise BenchError(f"{source}: sex values {_first(bad_sex)} are not 'F', 'M' or null.")
    bad_age = frame.filter((pl.col("age") < 0) | (pl.col("age") > 120))["age"]
    if len(bad_age):
        raise BenchError(f"{source}: ages {_first(bad_age)} are outside 0-120; store them as null.")
    bad_split = frame.filter(~pl.col("split").is_in(SPLITS))["split"].unique()
    if len(bad_split):
        raise BenchError(f"{source}: split values {_first(bad_split)} are not one of {list(SPLITS)}.")
    for name, allowed in ATTRIBUTE_COLUMNS.items():
        bad_values = frame.filter(pl.col(name).is_not_null() & ~pl.col(name).is_in(allowed))[name].unique()
        if len(bad_values):
            raise BenchError(f"{source}: {name} values {_first(bad_values)} are not one of {list(allowed)} or null.")
    for name in ALL_LABEL_COLUMNS:
        bad = frame.filter(pl.col(name).is_not_null() & ~pl.col(name).is_in([0, 1]))[name].unique()
        if len(bad):
            raise BenchError(f"{source}: label column {name} holds {_first(bad)}; labels are 1, 0 or null.")
    crossing = patients_in_several_splits(frame)
    if crossing:
        raise BenchError(f"{source}: patients {_first(crossing)} appear in more than one split; splits must be patient-disjoint.")
    return frame


def patients_in_several_splits(frame: pl.DataFrame) -> list[str]:
    """Patient ids whose images fall in more than one split (sorted)."""
    per_patient = frame.group_by("patient_id").agg(pl.col("split").n_unique().alias("splits"))
    return sorted(per_patient.filter(pl.col("splits") > 1)["patient_id"].to_list())


ESCAPING_PATH = r"^[/\\]|^[A-Za-z]:|(^|[/\\])\.\.([/\\]|$)"
"""Absolute paths (posix or Windows) and any `..` component."""


def escapes_root(path: pl.Expr) -> pl.Expr:
    """True where a relative path would leave the dataset root (absolute, drive letter, or a `..` part)."""
    return path.str.contains(ESCAPING_PATH)


def upgrade_manifest(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """A manifest of an earlier version with the optional columns it lacks added as null, in canonical order;
    and the names added. Frames missing anything else come back unchanged (validation then names the problem)."""
    added = [name for name in OPTIONAL_COLUMNS if name not in frame.columns]
    if not added or set(MANIFEST_COLUMNS) - set(added) != set(frame.columns):
        return frame, []
    frame = frame.with_columns([pl.lit(None, dtype=MANIFEST_SCHEMA[name]).alias(name) for name in added])
    return frame.select(MANIFEST_COLUMNS), added


def canonical_manifest(frame: pl.DataFrame) -> pl.DataFrame:
    """The canonical columns of an adapter's frame, in order and cast; nullable columns it lacks (sex, age, view,
    labels, race, insurance) are null."""
    nullable = ("sex", "age", "view") + OPTIONAL_COLUMNS + LABEL_COLUMNS
    missing = [pl.lit(None, dtype=MANIFEST_SCHEMA[name]).alias(name) for name in nullable if name not in frame.columns]
    return frame.with_columns(missing).select(MANIFEST_COLUMNS).cast(MANIFEST_SCHEMA)


def labelled_columns(frame: pl.DataFrame) -> tuple[str, ...]:
    """The label columns that hold at least one value (the dataset's own label set), in canonical order."""
    return tuple(name for name in ALL_LABEL_COLUMNS if name in frame.columns and frame[name].null_count() < frame.height)


def manifest_digest(frame: pl.DataFrame) -> str:
    """sha256 hex of a canonical serialisation: column names and types, then the rows as CSV.

    Two manifests share a digest exactly when they have the same columns, types and values in the same order,
    not counting optional columns (`OPTIONAL_COLUMNS`) that hold no value: upgrading a manifest of an earlier
    version, which lacked them, keeps its digest.
    """
    empty = [name for name in OPTIONAL_COLUMNS if name in frame.columns and frame[name].null_count() == frame.height]
    frame = frame.drop(empty) if frame.height else frame
    digest = hashlib.sha256()
    digest.update(repr([(name, str(dtype)) for name, dtype in frame.schema.items()]).encode())
    digest.update(b"\n")
    digest.update(frame.write_csv(include_header=False, null_value="<null>", line_terminator="\n").encode())
    return digest.hexdigest()


def empty_manifest() -> pl.DataFrame:
    """A manifest with no rows (the canonical columns and types)."""
    return pl.DataFrame(schema=MANIFEST_SCHEMA)
