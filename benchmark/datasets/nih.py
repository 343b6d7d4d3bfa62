"""NIH ChestX-ray14 as users download it -> the canonical manifest.

The official release (https://nihcc.app.box.com/v/ChestXray-NIHCC) holds:

- `Data_Entry_2017_v2020.csv` (current) or `Data_Entry_2017.csv` (original). Both start with the columns
  `Image Index, Finding Labels, Follow-up #, Patient ID, Patient Age, Patient Gender, View Position` and then the
  unquoted `OriginalImage[Width,Height]` / `OriginalImagePixelSpacing[x,y]` headers, which a CSV reader splits
  into four columns. The original file also ends its header with a comma (an empty 12th column), writes ages as
  `058Y` (a few as months `M` or days `D`, and some impossible ones such as `412Y`) and zero-pads ids; the v2020
  file writes plain integers. Some copies name the sex column `Patient Sex`; both names are accepted.
  `Finding Labels` joins the 14 findings with `|`, or says `No Finding`.
- PNG images under `images/` or split over `images_001/images/` ... `images_012/images/`.
- `train_val_list.txt` and `test_list.txt`: the official patient-wise split, one image name per line.

Splits: the official test list is the test split; val is carved from train_val by patient (seeded,
`val_fraction` of its patients). Without the lists, a seeded patient-wise split: `val_fraction` of patients to
val, 20% to test, the rest to train. Repairs (invalid ages, rows dropped on request, unlisted files) are counted
in `NihDataset.report`; anything ambiguous raises `BenchError` naming file, row and value.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.manifest import canonical_manifest, validate_manifest
from benchmark.core.schema import LABEL_COLUMNS, official_name
from benchmark.datasets.splits import split_patients

CSV_NAMES: tuple[str, ...] = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
LIST_NAMES: dict[str, str] = {"train_val": "train_val_list.txt", "test": "test_list.txt"}
OFFICIAL_LABELS: dict[str, str] = {official_name(column): column for column in LABEL_COLUMNS}

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "image_id": ("Image Index",),
    "labels": ("Finding Labels",),
    "patient_id": ("Patient ID",),
    "age": ("Patient Age",),
    "sex": ("Patient Gender", "Patient Sex"),
    "view": ("View Position",),
}
IMAGE_FOLDER = re.compile(r"^images_\d{3}$")
AGE_PATTERN = r"^(\d+(?:\.\d+)?)\s*([YyMmWwDd]?)$"
AGE_UNITS = {"": 1.0, "Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
MAX_AGE = 120.0
TEST_FRACTION_WITHOUT_LISTS = 0.2
EXAMPLES = 5


@dataclass(frozen=True)
class NihDataset:
    """The canonical manifest of an NIH ChestX-ray14 folder, its root, and what was found or repaired."""

    manifest: pl.DataFrame
    root: Path
    report: dict = field(default_factory=dict)


def load_nih(
    root: str | os.PathLike, *, val_fraction: float = 0.1, seed: int = 0, allow_missing_images: bool = False
) -> NihDataset:
    """Read an NIH ChestX-ray14 folder in the official layout into the canonical manifest.

    `allow_missing_images=True` drops (and counts) metadata rows whose PNG is absent instead of failing; use it
    for a partial download. Raises BenchError on anything that would give a wrong manifest.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BenchError(f"dataset root {root} is not a folder. Pass the folder that holds Data_Entry_2017_v2020.csv and images/.")
    if not 0 <= val_fraction < 1:
        raise BenchError(f"--val-fraction {val_fraction} must be at least 0 and below 1 (default 0.1).")
    root = root.resolve()
    report: dict = {"root": str(root), "notes": []}
    csv_path = _find_csv(root, report)
    rows = _read_metadata(csv_path)
    frame = _parse_rows(rows, csv_path, report)
    images, layout = _scan_images(root, report)
    frame = _attach_paths(frame, images, layout, csv_path, allow_missing_images, report)
    frame = _assign_splits(frame, root, val_fraction, seed, report)
    manifest = canonical_manifest(frame)
    validate_manifest(manifest, source=str(csv_path))
    report["rows"] = manifest.height
    report["patients"] = manifest["patient_id"].n_unique()
    return NihDataset(manifest=manifest, root=root, report=report)


def _examples(values, limit: int = EXAMPLES) -> str:
    values = list(values)
    shown = ", ".join(str(value) for value in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _find_csv(root: Path, report: dict) -> Path:
    present = [root / name for name in CSV_NAMES if (root / name).is_file()]
    if not present:
        raise BenchError(
            f"{root}: no NIH metadata file; expected {' or '.join(CSV_NAMES)} in this folder "
            "(download it from https://nihcc.app.box.com/v/ChestXray-NIHCC, or run `bench data synth --out DIR`)."
        )
    if len(present) > 1:
        report["notes"].append(f"both {CSV_NAMES[0]} and {CSV_NAMES[1]} exist; read {CSV_NAMES[0]} (the corrected v2020 release)")
    report["csv"] = present[0].name
    return present[0]


def _header(csv_path: Path) -> list[str]:
    """The CSV's column names; BenchError for a file that is not UTF-8 text (gzip, binary, another encoding)."""
    with open(csv_path, "rb") as handle:
        start = handle.read(4096)
    if start[:2] == b"\x1f\x8b":
        raise BenchError(f"{csv_path} is gzip-compressed; decompress it (gunzip) so that it is a plain CSV.")
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as handle:
            line = handle.readline()
    except UnicodeDecodeError as error:
        raise BenchError(f"{csv_path} is not UTF-8 text (byte {error.start} of the first line is {start[error.start:error.start + 1]!r}); "
                         "it may be binary, compressed or in another encoding. Re-download the CSV or save it as UTF-8.") from None
    if "\x00" in line:
        raise BenchError(f"{csv_path} holds binary data, not a CSV; re-download the metadata file.")
    return [name.strip() for name in line.rstrip("\r\n").split(",")]


def _read_metadata(csv_path: Path) -> pl.DataFrame:
    """The CSV as strings, columns named by our keys, plus `row` (the line number in the file)."""
    header = _header(csv_path)
    positions = {}
    for key, accepted in REQUIRED_COLUMNS.items():
        found = [i for i, name in enumerate(header) if name in accepted]
        if not found:
            known = {name for names in REQUIRED_COLUMNS.values() for name in names}
            candidates = [name for name in header if name and name not in known]  # never suggest renaming a column we need
            near = difflib.get_close_matches(accepted[0], candidates, n=1, cutoff=0.6)
            hint = f" (found {near[0]!r}: rename it to {accepted[0]!r})" if near else ""
            raise BenchError(
                f"{csv_path}: column {accepted[0]!r} is missing from the header{hint}. The official header starts "
                f"'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position'; "
                f"this file has {[name for name in header if name]}."
            )
        positions[key] = found[0]
    try:
        raw = pl.read_csv(
            csv_path,
            has_header=False,
            skip_rows=1,
            infer_schema=False,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        )
    except pl.exceptions.PolarsError as error:
        raise BenchError(f"{csv_path}: cannot be read as CSV ({error}). Re-download the file.") from error
    if raw.width <= max(positions.values()):
        raise BenchError(f"{csv_path}: data rows have {raw.width} fields but the header names {len(header)}; the file is truncated or not comma-separated.")
    columns = raw.columns
    return raw.select(
        [pl.col(columns[position]).str.strip_chars().alias(key) for key, position in positions.items()]
    ).with_row_index("row", offset=2)


def _fail_rows(csv_path: Path, bad: pl.DataFrame, column: str, problem: str, fix: str) -> None:
    if bad.height:
        first = [f"row {row}: {value!r}" for row, value in bad.select("row", column).head(EXAMPLES).iter_rows()]
        more = f" ... ({bad.height} rows in all)" if bad.height > EXAMPLES else ""
        raise BenchError(f"{csv_path}: {problem}: {'; '.join(first)}{more}. {fix}")


def _parse_rows(rows: pl.DataFrame, csv_path: Path, report: dict) -> pl.DataFrame:
    """The checked, typed rows of the metadata CSV (one per image), with repairs noted in `report`."""
    rows = _check_ids(rows, csv_path, report)
    sex = _parse_sex(rows, csv_path, report)
    age = _parse_age(rows, csv_path, report)
    label_lists = _parse_labels(rows, csv_path, report)
    patient = rows["patient_id"]
    patient = pl.select(
        pl.when(patient.str.contains(r"^\d+$")).then(patient.str.strip_chars_start("0").str.zfill(8)).otherwise(patient)
    ).to_series()
    view = rows["view"].str.to_uppercase()
    view = pl.select(pl.when(view == "").then(None).otherwise(view)).to_series()
    frame = pl.DataFrame(
        {
            "row": rows["row"],
            "image_id": rows["image_id"],
            "patient_id": patient,
            "sex": sex,
            "age": pl.select(age).to_series(),
            "view": view,
        }
    )
    label_columns = {
        column: label_lists.list.contains(official_name(column)).cast(pl.Int8) for column in LABEL_COLUMNS
    }
    return frame.with_columns(**label_columns)


def _check_ids(rows: pl.DataFrame, csv_path: Path, report: dict) -> pl.DataFrame:
    """Skip blank lines (noted); refuse rows without an image or patient id, path-like or repeated image ids."""
    blank = pl.all_horizontal([pl.col(key).is_null() | (pl.col(key) == "") for key in REQUIRED_COLUMNS])
    blank_lines = rows.filter(blank).height
    if blank_lines:
        report["notes"].append(f"{blank_lines} blank lines in {csv_path.name} were skipped")
        rows = rows.filter(~blank)
    _fail_rows(csv_path, rows.filter(pl.col("image_id").is_null() | (pl.col("image_id") == "")), "image_id",
               "rows without an Image Index", "Every row needs the image file name.")
    _fail_rows(csv_path, rows.filter(pl.col("image_id").str.contains(r"[/\\]|^\.\.?$")), "image_id",
               "Image Index values that are paths (they would point outside the image folders)",
               "Image Index must be a plain file name such as 00000001_000.png.")
    duplicated = rows.filter(pl.col("image_id").is_duplicated())
    _fail_rows(csv_path, duplicated, "image_id", "duplicate Image Index values",
               "Each image must appear once; remove the repeated rows.")
    _fail_rows(csv_path, rows.filter(pl.col("patient_id").is_null() | (pl.col("patient_id") == "")), "patient_id",
               "rows without a Patient ID", "Every row needs the patient id (splits are made by patient).")
    return rows


def _parse_sex(rows: pl.DataFrame, csv_path: Path, report: dict) -> pl.Series:
    """M / F / None; other values refused, missing ones counted."""
    sex = rows["sex"].str.to_uppercase()
    unknown_sex = rows.filter(sex.is_not_null() & (sex != "") & ~sex.is_in(["M", "F"]))
    _fail_rows(csv_path, unknown_sex, "sex", "unknown Patient Gender values",
               "Use M or F (leave the field empty when unknown).")
    missing_sex = int((sex.is_null() | (sex == "")).sum())
    if missing_sex:
        report["notes"].append(f"{missing_sex} rows have no sex; kept with sex unknown")
    report["missing_sex"] = missing_sex
    return pl.select(pl.when(sex.is_in(["M", "F"])).then(sex).otherwise(None)).to_series()


def _parse_age(rows: pl.DataFrame, csv_path: Path, report: dict) -> pl.Expr:
    """Age in years (058Y, 011M, 003D or plain years); text refused, ages outside 0-MAX_AGE made unknown."""
    age_parts = rows["age"].str.extract_groups(AGE_PATTERN)
    number = age_parts.struct.field("1").cast(pl.Float64)
    unit = age_parts.struct.field("2").str.to_uppercase()
    unparsable = rows.filter(rows["age"].is_not_null() & (rows["age"] != "") & number.is_null())
    _fail_rows(csv_path, unparsable, "age", "Patient Age values that are not ages",
               "Write ages as years (58) or as in the original release (058Y, 011M, 003D).")
    age = number * unit.replace_strict(AGE_UNITS, default=1.0, return_dtype=pl.Float64)
    invalid = rows.filter(age.is_not_null() & ((age < 0) | (age > MAX_AGE)))
    report["invalid_ages"] = {
        "count": invalid.height,
        "examples": [f"row {row}: {value}" for row, value in invalid.select("row", "age").head(EXAMPLES).iter_rows()],
    }
    if invalid.height:
        report["notes"].append(
            f"{invalid.height} ages outside 0-{MAX_AGE:g} years (e.g. {_examples(invalid['age'].head(3))}) are treated as unknown"
        )
    return pl.when((age >= 0) & (age <= MAX_AGE)).then(age).otherwise(None)


def _parse_labels(rows: pl.DataFrame, csv_path: Path, report: dict) -> pl.Series:
    """Each row's list of official findings; unknown labels refused with the nearest known one."""
    labels = rows.select("row", pl.col("labels").str.split("|")).explode("labels")
    labels = labels.with_columns(pl.col("labels").str.strip_chars())
    unknown = labels.filter(pl.col("labels").is_null() | ~pl.col("labels").is_in(list(OFFICIAL_LABELS)))
    if unknown.height:
        names = unknown["labels"].fill_null("").unique(maintain_order=True).to_list()
        hints = [f"{name!r} (did you mean {near[0]!r}?)" if (near := difflib.get_close_matches(name, list(OFFICIAL_LABELS), n=1)) else repr(name) for name in names[:EXAMPLES]]
        first_rows = unknown["row"].head(EXAMPLES).to_list()
        raise BenchError(
            f"{csv_path}: unknown Finding Labels {', '.join(hints)} in rows {_examples(first_rows)} "
            f"({unknown.height} occurrences). Known labels: {', '.join(OFFICIAL_LABELS)}, joined with '|'."
        )
    label_lists = rows["labels"].str.split("|").list.eval(pl.element().str.strip_chars())
    mixed = int((label_lists.list.contains("No Finding") & (label_lists.list.len() > 1)).sum())
    if mixed:
        report["notes"].append(f"{mixed} rows list 'No Finding' together with a finding; both are kept as given")
    return label_lists


def _scan_images(root: Path, report: dict) -> tuple[dict[str, str], str]:
    """Map image file name -> path relative to root, from one scan of images/ and images_NNN/images/."""
    folders = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir() and entry.name == "images":
                folders.append("images")
            elif entry.is_dir() and IMAGE_FOLDER.match(entry.name) and (root / entry.name / "images").is_dir():
                folders.append(f"{entry.name}/images")
    folders.sort()
    images: dict[str, str] = {}
    clashes = []
    other_files = 0
    for folder in folders:
        with os.scandir(root / folder) as entries:
            for entry in entries:
                if not entry.name.lower().endswith(".png") or not entry.is_file():
                    other_files += 1
                    continue
                relative = f"{folder}/{entry.name}"
                if entry.name in images:
                    clashes.append(f"{images[entry.name]} and {relative}")
                images[entry.name] = relative
    if clashes:
        raise BenchError(f"{root}: the same image file is in two folders: {_examples(clashes)}. Keep one copy of each image.")
    layout = "none" if not folders else "images/" if folders == ["images"] else f"{len(folders)} folders ({', '.join(folders[:3])}{', ...' if len(folders) > 3 else ''})"
    report["image_layout"] = layout
    report["image_folders"] = folders
    report["images_found"] = len(images)
    report["other_files"] = other_files
    if other_files:
        report["notes"].append(f"{other_files} non-PNG entries in the image folders were ignored")
    return images, layout


def _attach_paths(
    frame: pl.DataFrame, images: dict[str, str], layout: str, csv_path: Path, allow_missing: bool, report: dict
) -> pl.DataFrame:
    root = csv_path.parent
    if not images and not allow_missing:
        archives = sorted(path.name for path in root.glob("images_*.tar.gz"))
        found = f" Found archives {_examples(archives, 3)}: unpack them here (tar -xzf FILE)." if archives else ""
        raise BenchError(
            f"{root}: no PNG images found; expected them under images/ or images_001/images/ ... images_012/images/.{found} "
            "Unpack the image archives there (or pass --allow-missing-images to check the metadata alone)."
        )
    lookup = pl.DataFrame({"image_id": list(images), "path": list(images.values())}, schema={"image_id": pl.Utf8, "path": pl.Utf8})
    frame = frame.join(lookup, on="image_id", how="left", maintain_order="left")
    missing = frame.filter(pl.col("path").is_null())
    report["missing_images"] = {"count": missing.height, "examples": missing["image_id"].head(EXAMPLES).to_list()}
    if missing.height:
        if not allow_missing:
            raise BenchError(
                f"{csv_path}: {missing.height} listed images are missing from {layout} under {root}: "
                f"{_examples(missing['image_id'].to_list())}. Finish unpacking the archives, or pass "
                "--allow-missing-images to drop those rows (they will be counted in the report)."
            )
        report["notes"].append(f"{missing.height} rows dropped because their image file is missing (--allow-missing-images)")
        frame = frame.filter(pl.col("path").is_not_null())
    listed = set(frame["image_id"].to_list())
    unlisted = sorted(name for name in images if name not in listed)
    report["unlisted_images"] = {"count": len(unlisted), "examples": unlisted[:EXAMPLES]}
    if unlisted:
        report["notes"].append(f"{len(unlisted)} image files are not in {csv_path.name} and were ignored (e.g. {_examples(unlisted)})")
    return frame


def _read_list(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    names = [name for name in names if name]
    escaping = [name for name in names if re.search(r"[/\\]", name) or name in (".", "..")]
    if escaping:
        raise BenchError(f"{path}: entries that are paths, not image file names: {_examples(escaping)}. List one file name per line.")
    return names


def _assign_splits(frame: pl.DataFrame, root: Path, val_fraction: float, seed: int, report: dict) -> pl.DataFrame:
    present = {key: root / name for key, name in LIST_NAMES.items() if (root / name).is_file()}
    report["val_fraction"] = val_fraction
    report["seed"] = seed
    if not present:
        fractions = (1 - val_fraction - TEST_FRACTION_WITHOUT_LISTS, val_fraction, TEST_FRACTION_WITHOUT_LISTS)
        train, val, test = split_patients(frame["patient_id"].to_list(), fractions, seed)
        report["split_source"] = f"seeded patient-wise split {fractions[0]:.2f}/{fractions[1]:.2f}/{fractions[2]:.2f} (no official lists found)"
        return frame.with_columns(split=_split_column(frame, {"val": val, "test": test}))
    if len(present) == 1:
        (key, path), = present.items()
        other = LIST_NAMES["test" if key == "train_val" else "train_val"]
        raise BenchError(f"{root}: found {path.name} but not {other}. Provide both official lists, or neither for a seeded patient-wise split.")
    lists = {key: _read_list(path) for key, path in present.items()}
    in_both = sorted(set(lists["train_val"]) & set(lists["test"]))
    if in_both:
        raise BenchError(f"{root}: images in both {LIST_NAMES['train_val']} and {LIST_NAMES['test']}: {_examples(in_both)}. Each image belongs to one list.")
    for key, names in lists.items():
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        if duplicates:
            report["notes"].append(f"{LIST_NAMES[key]} repeats {len(duplicates)} names (e.g. {_examples(duplicates)}); counted once")
    listed = pl.DataFrame(
        {"image_id": lists["train_val"] + lists["test"], "listed": ["train_val"] * len(lists["train_val"]) + ["test"] * len(lists["test"])}
    ).unique("image_id", keep="first")
    frame = frame.join(listed, on="image_id", how="left", maintain_order="left")
    unassigned = frame.filter(pl.col("listed").is_null())
    if unassigned.height:
        raise BenchError(
            f"{root}: {unassigned.height} images of {report['csv']} are in neither split list: "
            f"{_examples(unassigned['image_id'].to_list())}. Add them to {LIST_NAMES['train_val']} or {LIST_NAMES['test']}, "
            "or remove both lists to get a seeded patient-wise split."
        )
    known = set(frame["image_id"].to_list())
    stray = sorted(name for name in set(lists["train_val"]) | set(lists["test"]) if name not in known)
    report["listed_not_in_metadata"] = {"count": len(stray), "examples": stray[:EXAMPLES]}
    if stray:
        report["notes"].append(f"{len(stray)} names in the split lists have no metadata row (or no image) and were ignored (e.g. {_examples(stray)})")
    test_patients = set(frame.filter(pl.col("listed") == "test")["patient_id"].to_list())
    crossing = frame.filter((pl.col("listed") == "train_val") & pl.col("patient_id").is_in(list(test_patients)))
    report["patients_in_both_lists"] = {"patients": crossing["patient_id"].n_unique(), "train_val_images_dropped": crossing.height,
                                        "examples": crossing["patient_id"].unique(maintain_order=True).head(EXAMPLES).to_list()}
    if crossing.height:
        report["notes"].append(
            f"WARNING: {crossing['patient_id'].n_unique()} patients have images in both official lists "
            f"(e.g. {_examples(crossing['patient_id'].unique(maintain_order=True).to_list())}); their "
            f"{crossing.height} train_val images were dropped so that no patient crosses splits (the test list is kept as published)"
        )
        frame = frame.filter(~((pl.col("listed") == "train_val") & pl.col("patient_id").is_in(list(test_patients))))
    train_val_patients = frame.filter(pl.col("listed") == "train_val")["patient_id"].to_list()
    _, val = split_patients(train_val_patients, (1 - val_fraction, val_fraction), seed) if train_val_patients else (set(), set())
    report["split_source"] = f"official lists; val = {val_fraction:.0%} of train_val patients (seed {seed})"
    split = _split_column(frame, {"val": val, "test": test_patients})
    return frame.with_columns(split=split).drop("listed")


def _split_column(frame: pl.DataFrame, groups: dict[str, set]) -> pl.Expr:
    """'test' for patients in groups['test'], 'val' for groups['val'], else 'train'."""
    return (
        pl.when(pl.col("patient_id").is_in(list(groups["test"]))).then(pl.lit("test"))
        .when(pl.col("patient_id").is_in(list(groups["val"]))).then(pl.lit("val"))
        .otherwise(pl.lit("train"))
    )
