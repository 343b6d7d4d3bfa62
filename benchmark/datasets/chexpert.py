"""CheXpert as users download it -> the canonical manifest.

The release (Stanford AIMI; Irvin et al., AAAI 2019) is a folder `CheXpert-v1.0` (full resolution) or
`CheXpert-v1.0-small` holding:

- `train.csv` (223,414 images) and `valid.csv` (234 images, radiologist consensus labels), columns `Path`,
  `Sex` (Male / Female / Unknown), `Age`, `Frontal/Lateral`, `AP/PA`, then the 14 observations coded 1.0 / 0.0 /
  -1.0 (uncertain) / blank. `Path` starts with the release folder's name
  (`CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg`); we strip that first part, so the
  manifest's paths are relative to the folder holding train.csv whatever it is called.
- the 500-image test set, released later: `test_labels.csv` (`Path` and the 14 observations, no demographics)
  with images under `test/`, when present (in the release folder or the folder above it).
- `CHEXPERT DEMO.xlsx` (or its CSV export), the demographics released separately: `PATIENT`, `GENDER`,
  `AGE_AT_CXR`, `PRIMARY_RACE`, `ETHNICITY`, one row per patient; joined on the patient id in the path.

Splits: train.csv is train. With the test set present, valid.csv is val and the test set is test; without it,
valid.csv is test and val is `val_fraction` of the training patients (seeded). Patients are disjoint across
the files (checked). Sex and age come from the CSV, the demographics file filling gaps (test set); race from
`PRIMARY_RACE` and `ETHNICITY` through the race map (`benchmark.datasets.attributes`).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.manifest import canonical_manifest, validate_manifest
from benchmark.datasets.attributes import attribute_map, map_values
from benchmark.datasets.common import (
    Dataset, LoadOptions, carve_validation, check_images, check_patient_splits, fail_rows, find_file,
    keep_views, read_table,
)
from benchmark.datasets.labels import OFFICIAL_OBSERVATIONS, decode_observations

RELEASE_FOLDERS = ("CheXpert-v1.0-small", "CheXpert-v1.0")
CSV_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OFFICIAL_OBSERVATIONS)
TEST_COLUMNS = ("Path", *OFFICIAL_OBSERVATIONS)
TEST_NAMES = ("test_labels.csv", "test.csv")
DEMO_NAMES = ("CHEXPERT DEMO.xlsx", "CHEXPERT DEMO.csv")
DEMO_COLUMNS = ("PATIENT", "GENDER", "AGE_AT_CXR", "PRIMARY_RACE", "ETHNICITY")
PATH_PATTERN = r"^[^/]+/patient\d+/study\d+/[^/]+\.(jpg|jpeg|png)$"
SEXES = {"MALE": "M", "FEMALE": "F", "UNKNOWN": None, "": None}
MAX_AGE = 120.0


def release_folder(root: Path) -> Path:
    """The folder that holds train.csv: `root` itself or its CheXpert-v1.0(-small) subfolder."""
    for folder in (root, *(root / name for name in RELEASE_FOLDERS)):
        if (folder / "train.csv").is_file():
            return folder
    raise BenchError(
        f"{root}: no CheXpert train.csv here or in {' / '.join(RELEASE_FOLDERS)}/. Pass the folder of the release "
        "as downloaded (or run `bench data synth --layout chexpert --out DIR`)."
    )


def load_chexpert(root: str | os.PathLike, options: LoadOptions = LoadOptions()) -> Dataset:
    """Read a CheXpert release folder into the canonical manifest (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BenchError(f"dataset root {root} is not a folder. Pass the folder of the CheXpert release (holding train.csv).")
    release = release_folder(root.resolve())
    report: dict = {"root": str(release), "notes": [], "uncertain": options.uncertain, "labels_read": {}}
    parts = [_read_split(release / "train.csv", "train", options, report),
             _read_split(release / "valid.csv", "valid", options, report)]
    test = find_file([release, release.parent], TEST_NAMES)
    if test is not None:
        parts.append(_read_split(test, "test", options, report))
    frame = pl.concat(parts, how="diagonal_relaxed")
    report["metadata"] = ", ".join(entry["file"] for entry in report["files"].values())
    check_patient_splits(frame.with_columns(split=pl.col("file")), source=str(release), what="patient")
    frame = _assign_splits(frame, test is not None, options, report)
    frame = keep_views(frame, pl.col("frontal"), options, report)
    frame = _join_demographics(frame, release, options, report)
    frame = check_images(frame, release, options, report, source=str(release / "train.csv"))
    manifest = canonical_manifest(frame)
    validate_manifest(manifest, source=str(release))
    report["rows"], report["patients"] = manifest.height, manifest["patient_id"].n_unique()
    return Dataset(manifest=manifest, root=release, report=report)


def _read_split(path: Path, split: str, options: LoadOptions, report: dict) -> pl.DataFrame:
    """One CSV of the release: paths, patients, sex, age, views and labels (the release's columns, checked)."""
    rows = read_table(path, TEST_COLUMNS if split == "test" else CSV_COLUMNS, what="CheXpert label file")
    blank = pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in rows.columns if c != "row"])
    if rows.filter(blank).height:
        report["notes"].append(f"{path.name}: {rows.filter(blank).height} blank lines skipped")
        rows = rows.filter(~blank)
    relative = rows["Path"].fill_null("").str.strip_chars().str.replace(r"^CheXpert-v1\.0[^/]*/", "")
    rows = rows.with_columns(path=relative)
    fail_rows(path, rows.filter(~pl.col("path").str.contains(PATH_PATTERN) | pl.col("path").str.contains(r"(^|/)\.\.(/|$)")), "Path",
              "Path values not of the form [CheXpert-v1.0*/]SPLIT/patientN/studyN/viewN_frontal.jpg",
              "Use the release's paths.")
    fail_rows(path, rows.filter(pl.col("path").is_duplicated()), "Path", "repeated Path values", "Each image must appear once.")
    labels, counts = decode_observations(rows, policy=options.uncertain, source=path)
    report["labels_read"][path.name] = counts
    frame = rows.select(
        "row", "path", pl.col("path").alias("image_id"), patient_id=pl.col("path").str.extract(r"(patient\d+)"),
        sex=_sex(rows, path), age=_age(rows, path, report),
        frontal=_frontal(rows), view=_view(rows), file=pl.lit(split),
    )
    report.setdefault("files", {})[split] = {"file": path.name, "rows": frame.height}
    return frame.join(labels, on="row", how="left").drop("row")


def _sex(rows: pl.DataFrame, path: Path) -> pl.Series:
    if "Sex" not in rows.columns:
        return pl.Series("sex", [None] * rows.height, dtype=pl.Utf8)
    key = rows["Sex"].fill_null("").str.strip_chars().str.to_uppercase()
    fail_rows(path, rows.filter(~key.is_in(list(SEXES))), "Sex", "unknown Sex values", "Use Male, Female, Unknown or blank.")
    return key.replace_strict(SEXES, default=None, return_dtype=pl.Utf8)


def _age(rows: pl.DataFrame, path: Path, report: dict) -> pl.Series:
    if "Age" not in rows.columns:
        return pl.Series("age", [None] * rows.height, dtype=pl.Float64)
    text = rows["Age"].str.strip_chars()
    number = text.cast(pl.Float64, strict=False)
    fail_rows(path, rows.filter(text.is_not_null() & (text != "") & number.is_null()), "Age",
              "Age values that are not numbers", "Write ages in years.")
    invalid = int(((number < 0) | (number > MAX_AGE)).sum())
    if invalid:
        report["notes"].append(f"{path.name}: {invalid} ages outside 0-{MAX_AGE:g} are treated as unknown")
    return pl.select(pl.when((number >= 0) & (number <= MAX_AGE)).then(number)).to_series()


def _frontal(rows: pl.DataFrame) -> pl.Series:
    if "Frontal/Lateral" in rows.columns:
        return rows["Frontal/Lateral"].str.strip_chars().str.to_lowercase() == "frontal"
    return rows["Path"].str.to_lowercase().str.contains("_frontal")


def _view(rows: pl.DataFrame) -> pl.Series:
    """AP / PA (or LL, RL) from the AP/PA column; FRONTAL or LATERAL where it is blank or absent."""
    side = rows["Frontal/Lateral"] if "Frontal/Lateral" in rows.columns else pl.Series(
        ["Frontal" if "_frontal" in p.lower() else "Lateral" for p in rows["Path"].to_list()])
    position = rows["AP/PA"].str.strip_chars().str.to_uppercase() if "AP/PA" in rows.columns else pl.Series([None] * rows.height, dtype=pl.Utf8)
    return pl.select(pl.when(position.is_not_null() & (position != "")).then(position)
                     .otherwise(side.str.strip_chars().str.to_uppercase())).to_series()


def _assign_splits(frame: pl.DataFrame, has_test: bool, options: LoadOptions, report: dict) -> pl.DataFrame:
    if has_test:
        report["split_source"] = "train.csv = train, valid.csv = val, test set labels = test"
        return frame.with_columns(split=pl.col("file").replace({"valid": "val"}))
    frame = frame.with_columns(split=pl.col("file").replace({"valid": "test"}))
    frame = carve_validation(frame, options, report)
    report["split_source"] = (f"train.csv = train, valid.csv = test (no test set labels found), val = "
                              f"{options.val_fraction:.0%} of training patients (seed {options.seed})")
    report["notes"].append("no test_labels.csv: valid.csv (radiologist labels) is the test split")
    return frame


def _join_demographics(frame: pl.DataFrame, release: Path, options: LoadOptions, report: dict) -> pl.DataFrame:
    """Race (and missing sex / age) from CHEXPERT DEMO.xlsx or its CSV export, joined on the patient id."""
    path = find_file([release, release.parent], DEMO_NAMES)
    if path is None:
        report["demographics"] = "not found"
        report["notes"].append(f"no {DEMO_NAMES[0]} (or .csv) in {release} or its parent: race is unknown for every image")
        return frame
    demo = _read_demographics(path, options, report)
    frame = frame.join(demo, on="patient_id", how="left")
    disagree = frame.filter(pl.col("sex").is_not_null() & pl.col("demo_sex").is_not_null() & (pl.col("sex") != pl.col("demo_sex")))
    if disagree.height:
        report["notes"].append(f"{disagree['patient_id'].n_unique()} patients' sex differs between the label files and "
                               f"{path.name} ({disagree.height} images); the label files' value is kept")
    unmatched = frame.filter(pl.col("demo_found").is_null())["patient_id"].n_unique()
    report["demographics"] = {"file": path.name, "patients_in_file": demo.height, "patients_without_row": unmatched}
    report["metadata"] += f", {path.name}"
    if unmatched:
        report["notes"].append(f"{unmatched} patients have no row in {path.name}: their race is unknown")
    return frame.with_columns(sex=pl.coalesce("sex", "demo_sex"), age=pl.coalesce("age", "demo_age")).drop(
        "demo_sex", "demo_age", "demo_found")


def _read_demographics(path: Path, options: LoadOptions, report: dict) -> pl.DataFrame:
    demo = read_table(path, DEMO_COLUMNS, what="CheXpert demographics file")
    patient = demo["PATIENT"].str.strip_chars()
    patient = pl.select(pl.when(patient.str.contains(r"^\d+$")).then(pl.lit("patient") + patient.str.zfill(5))
                        .otherwise(patient)).to_series()
    demo = demo.with_columns(patient_id=patient)
    fail_rows(path, demo.filter(~pl.col("patient_id").str.contains(r"^patient\d+$")), "PATIENT",
              "PATIENT values that are not patient ids", "Use the release's ids (patient00001).")
    fail_rows(path, demo.filter(pl.col("patient_id").is_duplicated()), "PATIENT", "patients listed twice", "Keep one row per patient.")
    race, race_counts = map_values(demo, "PRIMARY_RACE", attribute_map("race", "chexpert", options.race_map), source=path, what="race")
    hispanic, ethnicity_counts = map_values(demo, "ETHNICITY", attribute_map("ethnicity", "chexpert", options.race_map),
                                            source=path, what="ethnicity", null_means="no override")
    report["race_map"] = {"PRIMARY_RACE": race_counts, "ETHNICITY": ethnicity_counts,
                          "rule": "a Hispanic/Latino ethnicity makes the race group Hispanic/Latino"}
    sex = demo["GENDER"].fill_null("").str.strip_chars().str.to_uppercase()
    fail_rows(path, demo.filter(~sex.is_in(list(SEXES))), "GENDER", "unknown GENDER values", "Use Male, Female, Unknown or blank.")
    age = demo["AGE_AT_CXR"].str.strip_chars().cast(pl.Float64, strict=False)
    return pl.DataFrame({
        "patient_id": demo["patient_id"],
        "race": pl.select(pl.coalesce(hispanic, race)).to_series(),
        "demo_sex": sex.replace_strict(SEXES, default=None, return_dtype=pl.Utf8),
        "demo_age": pl.select(pl.when((age >= 0) & (age <= MAX_AGE)).then(age)).to_series(),
        "demo_found": pl.Series([True] * demo.height),
    })
