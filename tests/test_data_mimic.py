"""The MIMIC-CXR-JPG adapter (+ MIMIC-IV demographics) on the synthetic layout: files, rules, bad input."""

from __future__ import annotations

import gzip
import json
import shutil

import polars as pl
import pytest

from benchmark.core.errors import BenchError
from benchmark.core.schema import INSURANCES, RACES
from benchmark.datasets.common import LoadOptions
from benchmark.datasets.mimic import load_mimic
from benchmark.datasets.synth_mimic import write_mimic_synthetic


@pytest.fixture(scope="module")
def mimic(tmp_path_factory):
    """A small MIMIC layout with images (90 images, 16 px). Read-only: copy before changing."""
    return write_mimic_synthetic(tmp_path_factory.mktemp("mimic") / "mx", n=90, size=16, seed=5)


def _options(root, **extra) -> LoadOptions:
    return LoadOptions(mimic_iv=root / "mimiciv", **extra)


def _read(path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _write(frame: pl.DataFrame, path) -> None:
    with gzip.open(path, "wb") as handle:
        frame.write_csv(handle)


def test_release_reads_with_demographics(mimic):
    dataset = load_mimic(mimic / "mimic-cxr-jpg", _options(mimic))
    manifest, report = dataset.manifest, dataset.report
    assert all((dataset.root / path).is_file() for path in manifest["path"].to_list())
    assert manifest["path"].str.contains(r"^files/p1\d/p1\d{7}/s5\d{7}/[0-9a-f-]+\.jpg$").all()
    assert set(manifest["view"].unique()) <= {"AP", "PA"} and report["non_frontal_images"] > 0
    split = _read(mimic / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-split.csv.gz").rename({"dicom_id": "image_id"})
    joined = manifest.join(split, on="image_id")
    assert (joined["split"] == joined["split_right"].replace({"validate": "val"})).all()  # the official split
    assert set(manifest["race"].drop_nulls()) <= set(RACES) and set(manifest["insurance"].drop_nulls()) <= set(INSURANCES)
    assert manifest["sex"].null_count() < manifest.height and manifest["race"].null_count() < manifest.height
    metadata = _read(mimic / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-metadata.csv.gz").rename({"dicom_id": "image_id"})
    patients = _read(mimic / "mimiciv" / "hosp" / "patients.csv.gz").rename({"subject_id": "patient_id"})
    ages = manifest.join(metadata, on="image_id").join(patients, on="patient_id").select(
        "age", expected=pl.col("anchor_age").cast(pl.Float64) + pl.col("StudyDate").str.slice(0, 4).cast(pl.Float64)
        - pl.col("anchor_year").cast(pl.Float64))
    assert ages.height and (ages["age"] == ages["expected"]).all()  # anchor_age + (study year - anchor year)


def test_without_mimic_iv_demographics_are_unknown_and_said_so(mimic):
    dataset = load_mimic(mimic / "mimic-cxr-jpg")
    for column in ("sex", "age", "race", "insurance"):
        assert dataset.manifest[column].null_count() == dataset.manifest.height
    assert any("no --mimic-iv" in note for note in dataset.report["notes"])


def test_mimic_iv_v1_ethnicity_column_reads_like_v2_race(tmp_path):
    old = load_mimic((v1 := write_mimic_synthetic(tmp_path / "v1", n=300, size=16, seed=2, mimic_iv_version=1, metadata_only=True))
                     / "mimic-cxr-jpg", LoadOptions(mimic_iv=v1 / "mimiciv", metadata_only=True))
    new = load_mimic((v2 := write_mimic_synthetic(tmp_path / "v2", n=300, size=16, seed=2, metadata_only=True)) / "mimic-cxr-jpg",
                     LoadOptions(mimic_iv=v2 / "mimiciv", metadata_only=True))
    assert (v1 / "mimiciv" / "core" / "admissions.csv.gz").is_file() and "ethnicity" in old.report["race_map"]
    assert old.manifest["race"].to_list() == new.manifest["race"].to_list()


def test_negbio_labeler_reads_the_negbio_file(mimic):
    chexpert = load_mimic(mimic / "mimic-cxr-jpg", _options(mimic, uncertain="ignore"))
    negbio = load_mimic(mimic / "mimic-cxr-jpg", _options(mimic, uncertain="ignore", labeler="negbio"))
    assert negbio.report["files"]["negbio"] == "mimic-cxr-2.0.0-negbio.csv.gz"
    masked = lambda m: sum(m[c].null_count() for c in ("Atelectasis", "Consolidation", "Pneumonia", "Edema"))  # noqa: E731
    assert masked(negbio.manifest) < masked(chexpert.manifest)  # the synthetic NegBio file resolves some uncertain


def test_admissions_that_disagree_follow_the_majority_rule_and_are_counted(mimic, tmp_path):
    root = shutil.copytree(mimic, tmp_path / "copy")
    path = root / "mimiciv" / "hosp" / "admissions.csv.gz"
    admissions = _read(path)
    subjects = admissions["subject_id"].unique(maintain_order=True).to_list()[:2]
    extra = pl.concat([admissions.filter(pl.col("subject_id") == subjects[0]).head(1).with_columns(race=pl.lit(race))
                       for race in ("WHITE", "WHITE - RUSSIAN", "ASIAN")] +
                      [admissions.filter(pl.col("subject_id") == subjects[1]).head(1).with_columns(race=pl.lit(race))
                       for race in ("BLACK/AFRICAN AMERICAN", "HISPANIC OR LATINO", "UNKNOWN")])
    _write(pl.concat([admissions.filter(~pl.col("subject_id").is_in(subjects)), extra]), path)
    dataset = load_mimic(root / "mimic-cxr-jpg", _options(root, metadata_only=True, views="all"))
    race = dict(dataset.manifest.select("patient_id", "race").unique().iter_rows())
    assert race[subjects[0]] == "White"  # two White admissions against one Asian
    assert race[subjects[1]] is None  # Black against Hispanic/Latino (UNKNOWN not counted): a tie, unknown
    rule = dataset.report["admissions_rule"]["race"]
    assert rule["disagreeing"] >= 2 and rule["tied"] >= 1 and rule["majority"] >= 1


def test_a_wrong_column_is_named(mimic, tmp_path):
    root = shutil.copytree(mimic, tmp_path / "copy")
    path = root / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-metadata.csv.gz"
    _write(_read(path).rename({"ViewPosition": "View Position"}), path)
    with pytest.raises(BenchError, match=r"metadata\.csv\.gz: column 'ViewPosition' is missing \(found 'View Position': rename"):
        load_mimic(root / "mimic-cxr-jpg")


def test_a_subject_in_two_splits_is_named(mimic, tmp_path):
    root = shutil.copytree(mimic, tmp_path / "copy")
    path = root / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-split.csv.gz"
    split = _read(path)
    subject = split.group_by("subject_id").len().filter(pl.col("len") > 1)["subject_id"].sort()[0]
    first = split.with_row_index().filter(pl.col("subject_id") == subject)["index"][0]
    wrong = "test" if split.filter(pl.col("subject_id") == subject)["split"][0] != "test" else "train"
    _write(split.with_columns(split=pl.when(pl.int_range(pl.len()) == first).then(pl.lit(wrong)).otherwise(pl.col("split"))), path)
    with pytest.raises(BenchError, match=f"split.csv.gz: subjects in more than one split: {subject}: "):
        load_mimic(root / "mimic-cxr-jpg")


def test_an_unknown_race_string_is_named(mimic, tmp_path):
    root = shutil.copytree(mimic, tmp_path / "copy")
    path = root / "mimiciv" / "hosp" / "admissions.csv.gz"
    admissions = _read(path)
    _write(admissions.with_columns(race=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("KLINGON")).otherwise(pl.col("race"))), path)
    with pytest.raises(BenchError, match=r"admissions\.csv\.gz: unknown race value\(s\) in column 'race': 'KLINGON' \(rows 3\)"):
        load_mimic(root / "mimic-cxr-jpg", _options(root))


def test_a_missing_image_is_named(mimic, tmp_path):
    root = shutil.copytree(mimic, tmp_path / "copy")
    victim = next((root / "mimic-cxr-jpg" / "files").rglob("*.jpg"))
    relative = victim.relative_to(root / "mimic-cxr-jpg").as_posix()
    victim.unlink()
    options = _options(root, views="all")
    with pytest.raises(BenchError, match=f"1 image files are missing under .*{relative}"):
        load_mimic(root / "mimic-cxr-jpg", options)
    assert load_mimic(root / "mimic-cxr-jpg", _options(root, views="all", allow_missing_images=True)).report["missing_images"]["count"] == 1


def test_a_study_without_labels_is_kept_unknown_and_counted(mimic, tmp_path):
    root = shutil.copytree(mimic, tmp_path / "copy")
    path = root / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-chexpert.csv.gz"
    labels = _read(path)
    _write(labels.slice(1), path)
    dataset = load_mimic(root / "mimic-cxr-jpg", LoadOptions(views="all"))
    gone = dataset.manifest.filter(pl.col("image_id").is_in(
        _read(root / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-metadata.csv.gz").filter(pl.col("study_id") == labels["study_id"][0])["dicom_id"].to_list()))
    assert gone.height and gone["Edema"].null_count() == gone.height
    assert dataset.report["studies_without_labels"]["studies"] == 1


@pytest.mark.parametrize("group, column, effect", [("Black", "race", "underdiagnosis:Black=0.3"),
                                                   ("Medicaid", "insurance", "underdiagnosis:Medicaid=0.3")])
def test_planted_underdiagnosis_is_recovered_with_a_covering_ci(tmp_path, group, column, effect):
    from fairness import evaluate

    root = write_mimic_synthetic(tmp_path / "mx", n=5000, size=16, seed=9, effects=effect, metadata_only=True)
    manifest = load_mimic(root / "mimic-cxr-jpg", LoadOptions(mimic_iv=root / "mimiciv", metadata_only=True)).manifest
    flipped = json.loads((root / "synthetic_effects.json").read_text())["underdiagnosis_flips"]["studies"]
    metadata = _read(root / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-metadata.csv.gz").select(image_id="dicom_id", study="study_id")
    rows = manifest.join(metadata, on="image_id").with_columns(flipped=pl.col("study").is_in(flipped))
    truth = ((rows["No_Finding"] == 1) & ~rows["flipped"]).cast(pl.Int8).to_numpy()[:, None]
    recorded = rows["No_Finding"].cast(pl.Float64).to_numpy()[:, None]
    report = evaluate(y_test=truth, p_test=recorded, kind="multi", classes=("No_Finding",), patient_ids=rows["patient_id"].to_list(),
                      columns={column: rows[column].to_list()}, attributes=(column,), threshold_rule="fixed",
                      y_val=truth, p_val=recorded, n_boot=300, n_perm=0)
    gap = report.figures[f"underdiagnosis_gap_{column}"]
    assert gap.ci[0] <= 0.3 <= gap.ci[1] and gap.ci[0] > 0.1
