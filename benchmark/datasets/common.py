"""What the CheXpert and MIMIC-CXR adapters share: options, reading a table strictly, image checks, views,
patient-wise validation splits.

Every table is read as strings with its line numbers (`row`: the line in a CSV, the spreadsheet row in an
xlsx), so that any bad value is reported with its file, row and column. Nothing is dropped without being
counted in the adapter's report.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.datasets.labels import DEFAULT_UNCERTAIN, check_policy
from benchmark.datasets.splits import split_patients

EXAMPLES = 5
VIEWS = ("frontal", "all")
LABELERS = ("chexpert", "negbio")


@dataclass(frozen=True)
class Dataset:
    """The canonical manifest of a dataset folder, its root, and what was found, mapped or repaired."""

    manifest: pl.DataFrame
    root: Path
    report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    """How an adapter reads a release. Each adapter accepts the options that apply to it (see `adapters`).

    val_fraction, seed: the share of training patients held out for validation (where the release has no
        validation split of its own), and the seed of that draw.
    allow_missing_images: drop (and count) rows whose image file is absent instead of failing.
    metadata_only: do not look for image files at all (check the metadata before the images are downloaded).
    uncertain: "zeros", "ones" or "ignore" (masked) for uncertain (-1.0) labels.
    views: "frontal" (AP/PA, the default) or "all".
    labeler: MIMIC-CXR's label file, "chexpert" or "negbio".
    mimic_iv: the MIMIC-IV folder (hosp/ or core/ with patients and admissions) for MIMIC-CXR's demographics.
    race_map: a JSON file adding to or replacing entries of the race / insurance map.
    """

    val_fraction: float = 0.1
    seed: int = 0
    allow_missing_images: bool = False
    metadata_only: bool = False
    uncertain: str = DEFAULT_UNCERTAIN
    views: str = "frontal"
    labeler: str = "chexpert"
    mimic_iv: str | os.PathLike | None = None
    race_map: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise BenchError(f"--val-fraction {self.val_fraction} must be at least 0 and below 1 (default 0.1).")
        check_policy(self.uncertain)
        if self.views not in VIEWS:
            raise BenchError(f"--views {self.views!r} is not one of {', '.join(VIEWS)}.")
        if self.labeler not in LABELERS:
            raise BenchError(f"--labeler {self.labeler!r} is not one of {', '.join(LABELERS)}.")


def examples(values, limit: int = EXAMPLES) -> str:
    values = list(values)
    shown = ", ".join(str(value) for value in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def fail_rows(source: Path | str, bad: pl.DataFrame, column: str, problem: str, fix: str) -> None:
    """BenchError listing the first rows of `bad` (with `row` and `column`) when there are any."""
    if bad.height:
        first = [f"row {row}: {value!r}" for row, value in bad.select("row", column).head(EXAMPLES).iter_rows()]
        more = f" ... ({bad.height} rows in all)" if bad.height > EXAMPLES else ""
        raise BenchError(f"{source}: {problem}: {'; '.join(first)}{more}. {fix}")


def read_table(path: Path, required: tuple[str, ...], *, what: str) -> pl.DataFrame:
    """A CSV (optionally .gz) or .xlsx table as strings, plus `row` (its line or spreadsheet row); BenchError when
    it cannot be read or lacks a `required` column (naming a close match when the header has one)."""
    try:
        if path.suffix.lower() == ".xlsx":
            frame = pl.read_excel(path, engine="calamine", infer_schema_length=0)
        else:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        raise BenchError(f"{path}: cannot be read as {what} ({str(error).splitlines()[0]}). Re-download the file.") from None
    frame = frame.rename({name: name.strip() for name in frame.columns})
    for name in required:
        if name not in frame.columns:
            others = [c for c in frame.columns if c not in required]
            near = difflib.get_close_matches(name, others, n=1, cutoff=0.6)
            hint = f" (found {near[0]!r}: rename it to {name!r})" if near else ""
            raise BenchError(f"{path}: column {name!r} is missing{hint}. The {what} needs {list(required)}; "
                             f"this file has {frame.columns}.")
    return frame.with_row_index("row", offset=2).with_columns(pl.col("row").cast(pl.Int64))


def find_file(folders: list[Path], names: tuple[str, ...]) -> Path | None:
    """The first of `names` found in `folders` (in that order), or None."""
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def check_images(frame: pl.DataFrame, root: Path, options: LoadOptions, report: dict, *, source: str) -> pl.DataFrame:
    """Rows whose image file exists under `root` (all rows with `metadata_only`); a missing image is a BenchError
    naming it unless `allow_missing_images`, which drops and counts such rows."""
    if options.metadata_only:
        report["images"] = "not checked (--metadata-only)"
        report["notes"].append("image files were not checked (--metadata-only); extraction needs them")
        return frame
    present = [os.path.isfile(root / path) for path in frame["path"].to_list()]
    missing = frame.filter(~pl.Series(present, dtype=pl.Boolean))
    report["missing_images"] = {"count": missing.height, "examples": missing["path"].head(EXAMPLES).to_list()}
    report["images"] = f"{frame.height - missing.height:,} found"
    if missing.height and not options.allow_missing_images:
        raise BenchError(
            f"{source}: {missing.height} image files are missing under {root}: {examples(missing['path'].to_list())}. "
            "Finish downloading or unpacking the images, pass --allow-missing-images to drop those rows (counted), "
            "or --metadata-only to check the metadata alone."
        )
    if missing.height:
        report["notes"].append(f"{missing.height} rows dropped because their image file is missing (--allow-missing-images)")
    return frame.filter(pl.Series(present, dtype=pl.Boolean))


def keep_views(frame: pl.DataFrame, frontal: pl.Expr, options: LoadOptions, report: dict) -> pl.DataFrame:
    """Frontal images only (default; the others counted) or every view."""
    is_frontal = frame.select(frontal.fill_null(False)).to_series()
    report["views_kept"] = options.views
    report["non_frontal_images"] = int((~is_frontal).sum())
    if options.views == "all":
        return frame
    if report["non_frontal_images"]:
        report["notes"].append(f"{report['non_frontal_images']:,} lateral and other non-frontal images left out "
                               "(frontal AP/PA only; --views all keeps them)")
    return frame.filter(is_frontal)


def check_patient_splits(frame: pl.DataFrame, *, source: str, what: str = "patient") -> None:
    """BenchError when a patient's images fall in more than one split (naming patients and splits)."""
    splits = frame.group_by("patient_id").agg(pl.col("split").unique().sort().alias("splits"))
    crossing = splits.filter(pl.col("splits").list.len() > 1).sort("patient_id")
    if crossing.height:
        shown = "; ".join(f"{p}: {', '.join(s)}" for p, s in crossing.head(EXAMPLES).iter_rows())
        more = f" ... ({crossing.height} in all)" if crossing.height > EXAMPLES else ""
        raise BenchError(f"{source}: {what}s in more than one split: {shown}{more}. Splits must be patient-disjoint; "
                         "the split file is corrupted or from another release.")


def carve_validation(frame: pl.DataFrame, options: LoadOptions, report: dict, *, source: str = "train") -> pl.DataFrame:
    """Move `val_fraction` of the patients of split `source` (seeded) to "val"."""
    patients = frame.filter(pl.col("split") == source)["patient_id"].unique().sort().to_list()
    _, val = split_patients(patients, (1 - options.val_fraction, options.val_fraction), options.seed) if patients else (set(), set())
    report["val_source"] = f"{options.val_fraction:.0%} of {source} patients (seed {options.seed})"
    return frame.with_columns(split=pl.when(pl.col("patient_id").is_in(list(val))).then(pl.lit("val")).otherwise(pl.col("split")))
