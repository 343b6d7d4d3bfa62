"""MIMIC-CXR-JPG as users download it (PhysioNet) -> the canonical manifest.

The release folder (`physionet.org/files/mimic-cxr-jpg/2.0.0/`, or 2.1.0) holds:

- `mimic-cxr-2.0.0-chexpert.csv.gz` and `mimic-cxr-2.0.0-negbio.csv.gz`: one row per study (`subject_id`,
  `study_id`, the 14 observations coded 1.0 / 0.0 / -1.0 / blank), from the CheXpert and NegBio labelers run
  on the reports; `--labeler` chooses which.
- `mimic-cxr-2.0.0-metadata.csv.gz`: one row per image (`dicom_id`, `subject_id`, `study_id`, `ViewPosition`,
  `StudyDate` (shifted), ...).
- `mimic-cxr-2.0.0-split.csv.gz`: the official split per image (`train` / `validate` / `test`), by patient.
- images `files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg` (XX: the subject id's first two digits).

Demographics are not in MIMIC-CXR: with `--mimic-iv DIR` they come from MIMIC-IV (`benchmark.datasets.mimic_iv`);
without it sex, age, race and insurance are unknown. Every image gets its study's labels; a study without a
label row keeps its labels unknown (null, counted). Splits are the official ones (`validate` is val); a subject
in two splits is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.manifest import canonical_manifest, validate_manifest
from benchmark.datasets.common import (
    Dataset, LoadOptions, check_images, check_patient_splits, examples, fail_rows, keep_views, read_table,
)
from benchmark.datasets.labels import OFFICIAL_OBSERVATIONS, decode_observations
from benchmark.datasets.mimic_iv import read_demographics, study_age

VERSIONS = ("2.0.0", "2.1.0")
METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition")
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
LABEL_COLUMNS = ("subject_id", "study_id", *OFFICIAL_OBSERVATIONS)
SPLITS = {"train": "train", "validate": "val", "test": "test"}
FRONTAL = ("AP", "PA")


def release_file(root: Path, kind: str) -> Path:
    """`mimic-cxr-<version>-<kind>.csv.gz` (or .csv) in `root` or a version subfolder."""
    for folder in (root, *(root / version for version in VERSIONS)):
        for version in VERSIONS:
            for suffix in (".csv.gz", ".csv"):
                path = folder / f"mimic-cxr-{version}-{kind}{suffix}"
                if path.is_file():
                    return path
    raise BenchError(f"{root}: no mimic-cxr-2.0.0-{kind}.csv.gz. Pass the MIMIC-CXR-JPG folder as downloaded "
                     "(holding the metadata, split and label files and files/), or run `bench data synth --layout mimic`.")


def load_mimic(root: str | os.PathLike, options: LoadOptions = LoadOptions()) -> Dataset:
    """Read a MIMIC-CXR-JPG release folder (and optionally MIMIC-IV) into the canonical manifest."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BenchError(f"dataset root {root} is not a folder. Pass the MIMIC-CXR-JPG folder (holding mimic-cxr-2.0.0-metadata.csv.gz).")
    root = root.resolve()
    paths = {kind: release_file(root, kind) for kind in ("metadata", "split", options.labeler)}
    folder = paths["metadata"].parent
    report: dict = {"root": str(folder), "notes": [], "uncertain": options.uncertain, "labeler": options.labeler,
                    "files": {kind: path.name for kind, path in paths.items()}}
    report["metadata"] = ", ".join(path.name for path in paths.values())
    report["split_source"] = f"official ({paths['split'].name}; validate = val), patient-disjoint"
    frame = _images(paths["metadata"], paths["split"], report)
    frame = _attach_labels(frame, paths[options.labeler], options, report)
    frame = keep_views(frame, pl.col("view").is_in(FRONTAL), options, report)
    frame = _attach_demographics(frame, options, report)
    frame = check_images(frame, folder, options, report, source=str(paths["metadata"]))
    manifest = canonical_manifest(frame)
    validate_manifest(manifest, source=str(folder))
    report["rows"], report["patients"] = manifest.height, manifest["patient_id"].n_unique()
    return Dataset(manifest=manifest, root=folder, report=report)


def _ids(path: Path, rows: pl.DataFrame, columns: tuple[str, ...]) -> None:
    for column in columns:
        fail_rows(path, rows.filter(~pl.col(column).fill_null("").str.contains(r"^\d+$")), column,
                  f"{column} values that are not whole numbers", "Re-download the file.")


def _images(metadata_path: Path, split_path: Path, report: dict) -> pl.DataFrame:
    """One row per image: ids, path, view, date and official split (both files checked against each other)."""
    meta = read_table(metadata_path, METADATA_COLUMNS, what="MIMIC-CXR metadata file")
    _ids(metadata_path, meta, ("subject_id", "study_id"))
    fail_rows(metadata_path, meta.filter(~pl.col("dicom_id").fill_null("").str.contains(r"^[0-9A-Za-z-]+$")), "dicom_id",
              "dicom_id values that are empty or not file names", "Re-download the file.")
    fail_rows(metadata_path, meta.filter(pl.col("dicom_id").is_duplicated()), "dicom_id", "repeated dicom_id values",
              "Each image must appear once.")
    split = read_table(split_path, SPLIT_COLUMNS, what="MIMIC-CXR split file")
    bad = split.filter(~pl.col("split").str.strip_chars().is_in(list(SPLITS)))
    fail_rows(split_path, bad, "split", "split values other than train, validate or test", "Re-download the file.")
    check_patient_splits(split.select(patient_id="subject_id", split="split"), source=str(split_path), what="subject")
    fail_rows(split_path, split.filter(pl.col("dicom_id").is_duplicated()), "dicom_id", "images listed twice", "Each image must appear once.")
    joined = meta.join(split.select("dicom_id", split_subject="subject_id", split_study="study_id", split=pl.col("split").str.strip_chars()),
                       on="dicom_id", how="left")
    unsplit = joined.filter(pl.col("split").is_null())
    if unsplit.height:
        raise BenchError(f"{split_path}: {unsplit.height} images of {metadata_path.name} have no split: "
                         f"{examples(unsplit['dicom_id'].to_list())}. The two files must come from the same release.")
    fail_rows(split_path, joined.filter((pl.col("split_subject") != pl.col("subject_id")) | (pl.col("split_study") != pl.col("study_id"))),
              "dicom_id", "images whose subject or study differs from the metadata file", "Use files of one release.")
    stray = split.height - joined.height
    if stray:
        report["notes"].append(f"{stray} images in {split_path.name} have no metadata row and were ignored")
    view = pl.col("ViewPosition").str.strip_chars().str.to_uppercase()
    return joined.select(
        image_id="dicom_id", patient_id="subject_id", study_id="study_id",
        path=pl.format("files/p{}/p{}/s{}/{}.jpg", pl.col("subject_id").str.slice(0, 2), "subject_id", "study_id", "dicom_id"),
        view=pl.when(view == "").then(None).otherwise(view),
        study_date=pl.col("StudyDate") if "StudyDate" in meta.columns else pl.lit(None, dtype=pl.Utf8),
        split=pl.col("split").replace_strict(SPLITS, return_dtype=pl.Utf8),
    )


def _attach_labels(frame: pl.DataFrame, path: Path, options: LoadOptions, report: dict) -> pl.DataFrame:
    rows = read_table(path, LABEL_COLUMNS, what=f"MIMIC-CXR {options.labeler} label file")
    _ids(path, rows, ("subject_id", "study_id"))
    fail_rows(path, rows.filter(pl.col("study_id").is_duplicated()), "study_id", "studies listed twice", "Keep one row per study.")
    labels, counts = decode_observations(rows, policy=options.uncertain, source=path)
    report["labels_read"] = {path.name: counts}
    labels = labels.join(rows.select("row", label_subject="subject_id", study_id="study_id"), on="row")
    frame = frame.join(labels.rename({"row": "label_row"}), on="study_id", how="left")
    mismatch = frame.filter(pl.col("label_subject").is_not_null() & (pl.col("label_subject") != pl.col("patient_id")))
    fail_rows(path, mismatch.select(row="label_row", study_id="study_id"), "study_id",
              "studies whose subject differs from the metadata file", "Use files of one release.")
    unlabelled = frame.filter(pl.col("label_subject").is_null())
    report["studies_without_labels"] = {"studies": unlabelled["study_id"].n_unique(), "images": unlabelled.height}
    if unlabelled.height:
        report["notes"].append(f"{unlabelled['study_id'].n_unique()} studies ({unlabelled.height} images) have no row in "
                               f"{path.name}: their labels are unknown (null)")
    return frame.drop("label_subject", "label_row")


def _attach_demographics(frame: pl.DataFrame, options: LoadOptions, report: dict) -> pl.DataFrame:
    if options.mimic_iv is None:
        report["demographics"] = "none (no --mimic-iv)"
        report["notes"].append("no --mimic-iv folder: sex, age, race and insurance are unknown for every image")
        return frame
    patients, attributes = read_demographics(Path(options.mimic_iv), options, report)
    frame = frame.join(patients, left_on="patient_id", right_on="subject_id", how="left")
    frame = frame.join(attributes, left_on="patient_id", right_on="subject_id", how="left")
    without = frame.filter(pl.col("anchor_age").is_null() & pl.col("sex").is_null())["patient_id"].n_unique()
    no_admission = frame.filter(pl.col("race").is_null() & pl.col("insurance").is_null())["patient_id"].n_unique()
    report["demographics"] = {"patients_without_patients_row": without, "patients_with_unknown_race_and_insurance": no_admission}
    if without:
        report["notes"].append(f"{without} subjects have no row in the MIMIC-IV patients table: sex and age unknown")
    return frame.with_columns(age=study_age(pl.col("anchor_age"), pl.col("anchor_year"), pl.col("study_date")))
