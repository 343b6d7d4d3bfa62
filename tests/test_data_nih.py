"""The NIH adapter on folders in the official layouts, written here with tiny PNGs, and every bad-input case."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from PIL import Image

from benchmark.core.schema import LABEL_COLUMNS
from benchmark.core.manifest import MANIFEST_COLUMNS, MANIFEST_SCHEMA, patients_in_several_splits
from benchmark.datasets.nih import load_nih
from benchmark.core.errors import BenchError

V2020_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
# (image, labels, follow-up, patient, age, sex, view)
ROWS = [
    ("00000001_000.png", "Cardiomegaly", 0, 1, 57, "M", "PA"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, 1, 58, "M", "PA"),
    ("00000002_000.png", "No Finding", 0, 2, 80, "M", "PA"),
    ("00000003_000.png", "Hernia", 0, 3, 74, "F", "PA"),
    ("00000003_001.png", "Hernia|Infiltration", 1, 3, 75, "F", "AP"),
    ("00000004_000.png", "Mass|Nodule", 0, 4, 33, "F", "AP"),
    ("00000005_000.png", "No Finding", 0, 5, 41, "M", "PA"),
    ("00000006_000.png", "Effusion|Pleural_Thickening", 0, 6, 66, "F", "AP"),
    ("00000007_000.png", "Pneumothorax", 0, 7, 25, "M", "PA"),
    ("00000008_000.png", "Edema|Consolidation|Pneumonia", 0, 8, 70, "F", "AP"),
    ("00000009_000.png", "Atelectasis|Fibrosis", 0, 9, 62, "M", "PA"),
    ("00000010_000.png", "No Finding", 0, 10, 12, "F", "PA"),
]
TEST_LIST = ["00000002_000.png", "00000007_000.png", "00000010_000.png"]


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), 100, dtype=np.uint8)).save(path)


def write_release(root, rows=ROWS, *, variant="v2020", layout="flat", lists=True, header=None, images=None):
    """An NIH folder: metadata CSV in the given variant, 8x8 PNGs in the given layout, optional split lists."""
    root.mkdir(parents=True, exist_ok=True)
    if variant == "v2020":
        lines = [header or V2020_HEADER]
        lines += [f"{i},{l},{f},{p},{a},{s},{v},2500,2048,0.168,0.168" for i, l, f, p, a, s, v in rows]
        (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    else:  # the original 2017 file: trailing comma in the header, 058Y ages, zero-padded ids, CRLF
        lines = [(header or V2020_HEADER) + ","]
        for i, l, f, p, a, s, v in rows:
            age = a if isinstance(a, str) else f"{a:03d}Y"
            lines.append(f"{i},{l},{f:03d},{p:08d},{age},{s},{v},2500,2048,0.168,0.168")
        (root / "Data_Entry_2017.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    for index, row in enumerate(rows if images is None else images):
        name = row[0] if isinstance(row, tuple) else row
        folder = "images" if layout == "flat" else f"images_{index % 3 + 1:03d}/images"
        _png(root / folder / name)
    if lists:
        names = [row[0] for row in rows]
        (root / "test_list.txt").write_text("\n".join(n for n in names if n in TEST_LIST) + "\n")
        (root / "train_val_list.txt").write_text("\n".join(n for n in names if n not in TEST_LIST) + "\n")
    return root


def test_v2020_flat_layout_with_official_lists(tmp_path):
    dataset = load_nih(write_release(tmp_path / "nih"), val_fraction=0.25, seed=0)
    manifest = dataset.manifest
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert dict(manifest.schema) == MANIFEST_SCHEMA
    assert manifest.height == len(ROWS)
    first = manifest.row(1, named=True)
    assert first["image_id"] == "00000001_001.png"
    assert first["path"] == "images/00000001_001.png"
    assert first["patient_id"] == "00000001" and first["sex"] == "M" and first["age"] == 58.0 and first["view"] == "PA"
    assert first["Cardiomegaly"] == 1 and first["Emphysema"] == 1 and first["No_Finding"] == 0
    assert sum(first[name] for name in LABEL_COLUMNS) == 2
    assert manifest.filter(pl.col("image_id") == "00000002_000.png")["No_Finding"].item() == 1
    test_ids = set(manifest.filter(pl.col("split") == "test")["image_id"])
    assert test_ids == set(TEST_LIST)
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert patients_in_several_splits(manifest) == []
    assert dataset.report["split_source"].startswith("official lists")
    assert dataset.report["images_found"] == len(ROWS)


def test_original_2017_file_split_folders_without_lists(tmp_path):
    rows = list(ROWS)
    rows[2] = ("00000002_000.png", "No Finding", 0, 2, "412Y", "M", "PA")
    rows[5] = ("00000004_000.png", "Mass|Nodule", 0, 4, "006M", "F", "AP")
    root = write_release(tmp_path / "nih", rows, variant="2017", layout="split", lists=False)
    dataset = load_nih(root, seed=0)
    manifest = dataset.manifest
    assert manifest.height == len(rows)
    assert manifest.filter(pl.col("image_id") == "00000002_000.png")["age"].item() is None
    assert manifest.filter(pl.col("image_id") == "00000004_000.png")["age"].item() == pytest.approx(0.5)
    assert manifest.filter(pl.col("image_id") == "00000001_000.png")["age"].item() == 57.0
    assert dataset.report["invalid_ages"]["count"] == 1
    assert "412Y" in dataset.report["invalid_ages"]["examples"][0]
    assert any("outside 0-120" in note for note in dataset.report["notes"])
    assert set(manifest["path"].str.extract(r"^(images_\d{3})")) == {"images_001", "images_002", "images_003"}
    assert dataset.report["split_source"].startswith("seeded patient-wise split")
    assert patients_in_several_splits(manifest) == []
    again = load_nih(root, seed=0).manifest
    assert again.equals(manifest)
    splits = {tuple(load_nih(root, seed=seed).manifest["split"]) for seed in range(6)}
    assert len(splits) > 1, "different seeds should give different splits"


def test_blank_lines_are_skipped_and_row_numbers_stay_true(tmp_path):
    root = write_release(tmp_path / "nih")
    csv = root / "Data_Entry_2017_v2020.csv"
    lines = csv.read_text().splitlines()
    lines.insert(3, "")
    lines[6] = lines[6].replace(",F,", ",Q,")
    csv.write_text("\n".join(lines) + "\n\n")
    message = _error(root)
    assert "row 7: 'Q'" in message
    lines[6] = lines[6].replace(",Q,", ",F,")
    csv.write_text("\n".join(lines) + "\n\n")
    dataset = load_nih(root)
    assert dataset.manifest.height == len(ROWS)
    assert any("2 blank lines" in note for note in dataset.report["notes"])


def test_patient_sex_header_alias(tmp_path):
    header = V2020_HEADER.replace("Patient Gender", "Patient Sex")
    manifest = load_nih(write_release(tmp_path / "nih", header=header)).manifest
    assert manifest["sex"].to_list() == [row[5] for row in ROWS]


def test_val_is_carved_by_patient_from_train_val(tmp_path):
    rows = [(f"{p:08d}_{k:03d}.png", "No Finding", k, p, 40, "F", "PA") for p in range(1, 41) for k in range(3)]
    root = write_release(tmp_path / "nih", rows, lists=False)
    (root / "test_list.txt").write_text("\n".join(r[0] for r in rows if r[3] <= 10) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(r[0] for r in rows if r[3] > 10) + "\n")
    manifest = load_nih(root, val_fraction=0.2, seed=1).manifest
    per_split = manifest.group_by("split").agg(pl.col("patient_id").n_unique())
    counts = dict(per_split.iter_rows())
    assert counts == {"test": 10, "val": 6, "train": 24}
    assert patients_in_several_splits(manifest) == []


# --- bad input -------------------------------------------------------------------------------------------


def _error(root, **kwargs) -> str:
    with pytest.raises(BenchError) as caught:
        load_nih(root, **kwargs)
    return str(caught.value)


def test_renamed_column_is_named_with_a_hint(tmp_path):
    header = V2020_HEADER.replace("Patient Age", "Patient_Age")
    message = _error(write_release(tmp_path / "nih", header=header))
    assert "Data_Entry_2017_v2020.csv" in message and "'Patient Age' is missing" in message
    assert "rename it" in message and "Patient_Age" in message


def test_missing_column(tmp_path):
    header = V2020_HEADER.replace("View Position,", "")
    root = write_release(tmp_path / "nih", header=header)
    assert "'View Position' is missing" in _error(root)


def test_unknown_sex_value_names_row_and_value(tmp_path):
    rows = list(ROWS)
    rows[3] = ("00000003_000.png", "Hernia", 0, 3, 74, "X", "PA")
    message = _error(write_release(tmp_path / "nih", rows))
    assert "unknown Patient Gender" in message and "row 5: 'X'" in message and "Use M or F" in message


def test_unknown_finding_suggests_the_official_name(tmp_path):
    rows = list(ROWS)
    rows[7] = ("00000006_000.png", "Effusion|Pleural Thickening", 0, 6, 66, "F", "AP")
    message = _error(write_release(tmp_path / "nih", rows))
    assert "unknown Finding Labels" in message and "'Pleural Thickening'" in message
    assert "did you mean 'Pleural_Thickening'" in message and "rows 9" in message


def test_duplicate_image_ids(tmp_path):
    rows = list(ROWS) + [ROWS[4]]
    message = _error(write_release(tmp_path / "nih", rows, images=ROWS))
    assert "duplicate Image Index" in message and "00000003_001.png" in message and "row 6" in message and "row 14" in message


def test_unparsable_age(tmp_path):
    rows = list(ROWS)
    rows[0] = ("00000001_000.png", "Cardiomegaly", 0, 1, "fifty", "M", "PA")
    message = _error(write_release(tmp_path / "nih", rows))
    assert "not ages" in message and "row 2: 'fifty'" in message


def test_missing_listed_image_fails_unless_allowed(tmp_path):
    root = write_release(tmp_path / "nih", images=ROWS[:-2])
    message = _error(root)
    assert "2 listed images are missing" in message and "00000009_000.png" in message and "--allow-missing-images" in message
    dataset = load_nih(root, allow_missing_images=True)
    assert dataset.manifest.height == len(ROWS) - 2
    assert dataset.report["missing_images"]["count"] == 2
    assert "00000010_000.png" not in set(dataset.manifest["image_id"])


def test_unlisted_image_files_are_reported(tmp_path):
    root = write_release(tmp_path / "nih")
    _png(root / "images" / "99999999_000.png")
    (root / "images" / "notes.txt").write_text("x")
    dataset = load_nih(root)
    assert dataset.manifest.height == len(ROWS)
    assert dataset.report["unlisted_images"] == {"count": 1, "examples": ["99999999_000.png"]}
    assert dataset.report["other_files"] == 1
    assert any("not in Data_Entry_2017_v2020.csv" in note for note in dataset.report["notes"])


def test_paths_escaping_the_root_are_refused(tmp_path):
    rows = list(ROWS)
    rows[0] = ("../../etc/passwd.png", "Cardiomegaly", 0, 1, 57, "M", "PA")
    message = _error(write_release(tmp_path / "nih", rows, images=ROWS))
    assert "are paths" in message and "../../etc/passwd.png" in message and "row 2" in message
    root = write_release(tmp_path / "nih2")
    (root / "test_list.txt").write_text("../00000002_000.png\n")
    assert "not image file names" in _error(root)


def test_image_in_no_list_and_in_both_lists(tmp_path):
    root = write_release(tmp_path / "nih")
    (root / "test_list.txt").write_text("00000002_000.png\n")
    message = _error(root)
    assert "in neither split list" in message and "00000007_000.png" in message
    root = write_release(tmp_path / "nih2")
    with open(root / "test_list.txt", "a") as handle:
        handle.write("00000001_000.png\n")
    assert "in both train_val_list.txt and test_list.txt" in _error(root)


def test_only_one_split_list(tmp_path):
    root = write_release(tmp_path / "nih")
    (root / "test_list.txt").unlink()
    assert "found train_val_list.txt but not test_list.txt" in _error(root)


def test_patient_in_both_official_lists_is_reported_and_kept_out_of_train(tmp_path):
    root = write_release(tmp_path / "nih", lists=False)
    test = ["00000001_001.png", "00000002_000.png"]
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(r[0] for r in ROWS if r[0] not in test) + "\n")
    dataset = load_nih(root)
    crossing = dataset.report["patients_in_both_lists"]
    assert crossing["patients"] == 1 and crossing["train_val_images_dropped"] == 1 and crossing["examples"] == ["00000001"]
    assert any(note.startswith("WARNING: 1 patients have images in both official lists") for note in dataset.report["notes"])
    manifest = dataset.manifest
    assert "00000001_000.png" not in set(manifest["image_id"])
    assert manifest.filter(pl.col("image_id") == "00000001_001.png")["split"].item() == "test"
    assert patients_in_several_splits(manifest) == []


def test_no_metadata_no_images_no_folder(tmp_path):
    assert "is not a folder" in _error(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert "no NIH metadata file" in _error(tmp_path / "empty")
    root = write_release(tmp_path / "nih", images=[])
    assert "no PNG images found" in _error(root)
    (root / "images_001.tar.gz").write_bytes(b"")
    assert "Found archives images_001.tar.gz: unpack them here" in _error(root)
    assert load_nih(root, allow_missing_images=True).manifest.height == 0


def test_bad_val_fraction(tmp_path):
    assert "--val-fraction" in _error(write_release(tmp_path / "nih"), val_fraction=1.0)


def test_renamed_column_hint_never_suggests_renaming_a_column_that_is_needed(tmp_path):
    header = V2020_HEADER.replace("Patient Gender", "Gender")
    message = _error(write_release(tmp_path / "nih", header=header))
    assert "'Patient Gender' is missing" in message
    assert "found 'Gender': rename it to 'Patient Gender'" in message
    assert "found 'Patient Age'" not in message
