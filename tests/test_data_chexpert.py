"""The CheXpert adapter on the synthetic CheXpert layout: labels, views, splits, demographics, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest

from benchmark.core.errors import BenchError
from benchmark.core.schema import CHEXPERT_LABELS, RACES
from benchmark.datasets.chexpert import load_chexpert
from benchmark.datasets.common import LoadOptions
from benchmark.datasets.synth_chexpert import write_chexpert_synthetic


@pytest.fixture(scope="module")
def chexpert(tmp_path_factory):
    """A small CheXpert-layout dataset with images (80 images, 16 px). Read-only: copy before changing."""
    return write_chexpert_synthetic(tmp_path_factory.mktemp("chexpert") / "cx", n=80, size=16, seed=3)


def _copy(chexpert, tmp_path):
    return shutil.copytree(chexpert, tmp_path / "copy")


def _raw(chexpert) -> pl.DataFrame:
    return pl.read_csv(chexpert / "CheXpert-v1.0-small" / "train.csv", infer_schema=False)


def test_release_reads_into_the_canonical_manifest(chexpert):
    dataset = load_chexpert(chexpert)
    manifest, report = dataset.manifest, dataset.report
    assert dataset.root.name == "CheXpert-v1.0-small"
    assert all((dataset.root / path).is_file() for path in manifest["path"].to_list())
    assert manifest["path"].str.starts_with("CheXpert").sum() == 0  # the release prefix is stripped
    assert set(manifest["split"].unique()) == {"train", "val", "test"}
    files = {split: set(manifest.filter(pl.col("split") == split)["path"].str.extract(r"^(\w+)/").to_list()) for split in ("train", "val", "test")}
    assert files == {"train": {"train"}, "val": {"valid"}, "test": {"test"}}
    assert set(manifest["race"].drop_nulls().unique()) <= set(RACES) and manifest["race"].null_count() < manifest.height
    assert manifest["insurance"].null_count() == manifest.height  # CheXpert records no insurance
    assert manifest.filter(pl.col("split") == "test")["sex"].null_count() == 0  # filled from CHEXPERT DEMO
    assert report["demographics"]["file"] == "CHEXPERT DEMO.xlsx" and report["non_frontal_images"] > 0
    laterals = _raw(chexpert).filter(pl.col("Frontal/Lateral") == "Lateral").height
    everything = load_chexpert(chexpert, LoadOptions(views="all")).manifest
    assert everything.height - manifest.height == report["non_frontal_images"] >= laterals


@pytest.mark.parametrize("policy, value", [("zeros", 0), ("ones", 1), ("ignore", None)])
def test_uncertain_policy_and_blanks(chexpert, policy, value):
    raw = _raw(chexpert).with_columns(image_id=pl.col("Path").str.replace(r"^CheXpert-v1\.0-small/", ""))
    manifest = load_chexpert(chexpert, LoadOptions(uncertain=policy, views="all")).manifest
    joined = raw.join(manifest.select("image_id", *[pl.col(c).alias(f"m_{c}") for c in CHEXPERT_LABELS]), on="image_id")
    for official in ("Consolidation", "Atelectasis", "Pneumonia"):
        column = "m_" + official.replace(" ", "_")
        uncertain = joined.filter(pl.col(official) == "-1.0")[column]
        assert uncertain.len() > 0
        assert (uncertain.null_count() == uncertain.len()) if value is None else bool((uncertain == value).all())
        blank = joined.filter(pl.col(official).is_null())[column]
        assert blank.null_count() == 0 and bool((blank == 0).all())  # blank = not mentioned = 0, never masked
    assert load_chexpert(chexpert, LoadOptions(uncertain=policy)).report["labels_read"]["train.csv"]["Atelectasis"]["uncertain"] > 0


def test_without_test_labels_valid_is_the_test_split_and_val_is_carved_by_patient(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    (root / "CheXpert-v1.0-small" / "test_labels.csv").unlink()
    shutil.rmtree(root / "CheXpert-v1.0-small" / "test")
    manifest = load_chexpert(root, LoadOptions(val_fraction=0.3, seed=1)).manifest
    test_files = set(manifest.filter(pl.col("split") == "test")["path"].str.extract(r"^(\w+)/").to_list())
    val_files = set(manifest.filter(pl.col("split") == "val")["path"].str.extract(r"^(\w+)/").to_list())
    assert test_files == {"valid"} and val_files == {"train"}
    per_patient = manifest.group_by("patient_id").agg(pl.col("split").n_unique())
    assert per_patient["split"].max() == 1


def test_demographics_csv_export_gives_the_same_manifest(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    xlsx = pl.read_excel(root / "CHEXPERT DEMO.xlsx", engine="calamine")
    (root / "CHEXPERT DEMO.xlsx").unlink()
    xlsx.write_csv(root / "CHEXPERT DEMO.csv")
    assert load_chexpert(root).manifest.equals(load_chexpert(chexpert).manifest)


def test_missing_demographics_leave_race_unknown_and_say_so(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    (root / "CHEXPERT DEMO.xlsx").unlink()
    dataset = load_chexpert(root)
    assert dataset.manifest["race"].null_count() == dataset.manifest.height
    assert any("race is unknown for every image" in note for note in dataset.report["notes"])


def test_a_wrong_column_is_named_with_a_hint(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    path = root / "CheXpert-v1.0-small" / "train.csv"
    _raw(root).rename({"Frontal/Lateral": "Frontal-Lateral"}).write_csv(path)
    with pytest.raises(BenchError, match=r"train\.csv: column 'Frontal/Lateral' is missing \(found 'Frontal-Lateral': rename it"):
        load_chexpert(root)


def test_a_patient_in_two_splits_is_named(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    release = root / "CheXpert-v1.0-small"
    train = _raw(root)
    valid = pl.read_csv(release / "valid.csv", infer_schema=False)
    moved = train.head(1).with_columns(pl.col("Path").str.replace("/train/", "/valid/").str.replace("/study1/", "/study9/"))
    pl.concat([valid, moved]).write_csv(release / "valid.csv")
    patient = moved["Path"].str.extract(r"(patient\d+)")[0]
    with pytest.raises(BenchError, match=f"patients in more than one split: {patient}: train, valid"):
        load_chexpert(root)


def test_an_unknown_race_string_is_named_with_its_row(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    demo = pl.read_excel(root / "CHEXPERT DEMO.xlsx", engine="calamine", infer_schema_length=0)
    demo = demo.with_columns(PRIMARY_RACE=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("Martian")).otherwise(pl.col("PRIMARY_RACE")))
    demo.write_excel(root / "CHEXPERT DEMO.xlsx")
    with pytest.raises(BenchError, match=r"CHEXPERT DEMO\.xlsx: unknown race value\(s\) in column 'PRIMARY_RACE': 'Martian' \(rows 6\)"):
        load_chexpert(root)
    extra = tmp_path / "map.json"
    extra.write_text(json.dumps({"race": {"chexpert": {"Martian": "Other"}}}))
    assert "Other" in load_chexpert(root, LoadOptions(race_map=extra)).manifest["race"].to_list()
    flat = tmp_path / "flat-map.json"  # the dataset level left out: refused in one line, not a traceback
    flat.write_text(json.dumps({"race": {"Martian": "Other"}}))
    with pytest.raises(BenchError, match=r"flat-map\.json: race\.Martian is 'Other', not a table of raw strings"):
        load_chexpert(root, LoadOptions(race_map=flat))


def test_a_missing_image_is_named_or_dropped_and_counted(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    victim = next((root / "CheXpert-v1.0-small" / "train").rglob("view1_frontal.jpg"))
    victim.unlink()
    relative = victim.relative_to(root / "CheXpert-v1.0-small").as_posix()
    with pytest.raises(BenchError, match=f"1 image files are missing under .*{relative}"):
        load_chexpert(root)
    dataset = load_chexpert(root, LoadOptions(allow_missing_images=True))
    assert relative not in dataset.manifest["path"].to_list() and dataset.report["missing_images"]["count"] == 1
    assert load_chexpert(root, LoadOptions(metadata_only=True)).manifest.height == dataset.manifest.height + 1


def test_a_bad_label_value_is_named(chexpert, tmp_path):
    root = _copy(chexpert, tmp_path)
    path = root / "CheXpert-v1.0-small" / "train.csv"
    _raw(root).with_columns(Edema=pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("2.0")).otherwise(pl.col("Edema"))).write_csv(path)
    with pytest.raises(BenchError, match=r"train\.csv: column 'Edema' holds values that are not 1\.0, 0\.0, -1\.0 or blank: row 4: '2\.0'"):
        load_chexpert(root)


def test_planted_race_underdiagnosis_is_recovered_with_a_covering_ci(tmp_path):
    """The recorded No Finding label against the truth (synthetic_effects.json): its underdiagnosis rate is the
    planted size in the Black group and 0 elsewhere; the engine's gap and CI must find it."""
    from fairness import evaluate

    planted = 0.25
    root = write_chexpert_synthetic(tmp_path / "cx", n=4000, size=16, seed=11, effects=f"underdiagnosis:Black={planted}",
                                    metadata_only=True)
    manifest = load_chexpert(root, LoadOptions(metadata_only=True)).manifest
    flipped = json.loads((root / "synthetic_effects.json").read_text())["underdiagnosis_flips"]["studies"]
    rows = manifest.with_columns(flipped=pl.col("path").str.extract(r"(patient\d+/study\d+)").is_in(flipped))
    truth = ((rows["No_Finding"] == 1) & ~rows["flipped"]).cast(pl.Int8).to_numpy()[:, None]
    recorded = rows["No_Finding"].cast(pl.Float64).to_numpy()[:, None]
    report = evaluate(y_test=truth, p_test=recorded, kind="multi", classes=("No_Finding",),
                      patient_ids=rows["patient_id"].to_list(), columns={"race": rows["race"].to_list()},
                      attributes=("race",), threshold_rule="fixed", y_val=truth, p_val=recorded, n_boot=300, n_perm=0)
    gap = report.figures["underdiagnosis_gap_race"]
    assert gap.ci[0] <= planted <= gap.ci[1] and gap.ci[0] > 0.1
    assert np.isclose(gap.value, rows.filter(pl.col("race") == "Black", pl.col("No_Finding") == 1, pl.col("flipped")).height
                      / rows.filter(pl.col("race") == "Black", ~((pl.col("No_Finding") == 1) & ~pl.col("flipped"))).height)


def test_observation_columns_are_the_chexpert_set(chexpert):
    from benchmark.core.manifest import labelled_columns

    assert set(labelled_columns(load_chexpert(chexpert).manifest)) == set(CHEXPERT_LABELS)
