"""A synthetic dataset in exactly the MIMIC-CXR-JPG (+ MIMIC-IV) layout, with planted race and insurance effects.

`write_mimic_synthetic(out, n=1000, ...)` writes:

    out/mimic-cxr-jpg/mimic-cxr-2.0.0-chexpert.csv.gz, -negbio.csv.gz   per study: subject_id, study_id, the 14
                                                   observations (alphabetical, as released) coded 1.0/0.0/-1.0/blank
    out/mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv.gz   per image: dicom_id, subject_id, study_id, ViewPosition,
                                                   StudyDate (shifted years 21xx), ... as released
    out/mimic-cxr-jpg/mimic-cxr-2.0.0-split.csv.gz      per image: train / validate / test, by subject
    out/mimic-cxr-jpg/files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg   phantoms (unless metadata_only)
    out/mimiciv/hosp/patients.csv.gz, admissions.csv.gz   MIMIC-IV v2 (`race`); v1 writes core/ with `ethnicity`
    out/synthetic_effects.json                       what was planted and every flipped study

Admissions: some patients have none (race and insurance unknown), some have an extra admission whose race and
insurance disagree with the others (the adapter's majority rule then recovers the truth, or leaves a tie
unknown); a few subjects lack a patients row. Synthetic: for testing the software and the fairness tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress
from benchmark.datasets.labels import BLANK
from benchmark.datasets.splits import split_patients
from benchmark.datasets.synth import EFFECTS_NAME, parse_effects, prepare_folder
from benchmark.datasets.synth_population import (
    CxrEffect, effects_record, label_text, marginals, plant_underdiagnosis,
    render_images, sample_population, table, write_csv_gz,
)

RELEASE = "mimic-cxr-jpg"
MIMIC_IV = "mimiciv"
PREFIX = "mimic-cxr-2.0.0-"
DEFAULT_EFFECTS: tuple[str, ...] = ("underdiagnosis:Black=0.3", "underdiagnosis:Medicaid=0.2")
SPLIT_SHARES = (0.7, 0.1, 0.2)
MISSING_PATIENT_ROW = 0.01


def write_mimic_synthetic(
    out: str | os.PathLike, *, n: int = 1000, size: int = 256, seed: int = 0,
    effects: str | Iterable[str] | None = DEFAULT_EFFECTS, mimic_iv_version: int = 2, metadata_only: bool = False,
    workers: int = 0, overwrite: bool = False, progress: Progress = SILENT,
) -> Path:
    """Write a synthetic MIMIC-CXR-JPG + MIMIC-IV layout of `n` images into `out`; return the folder."""
    if n < 1 or not 16 <= size <= 4096 or mimic_iv_version not in (1, 2):
        raise BenchError(f"--n {n} must be at least 1, --size {size} 16-4096 px, the MIMIC-IV version 1 or 2.")
    effects = parse_effects(effects, CxrEffect)
    out = Path(out).expanduser()
    prepare_folder(out, overwrite, (RELEASE, MIMIC_IV))
    population = sample_population(n, "mimic", seed)
    plant_underdiagnosis(population, effects, seed)
    rng = np.random.default_rng([seed, 23])
    ids = _identifiers(population, rng)
    release = out / RELEASE
    images = _write_release(release, population, ids, rng, seed)
    _write_mimic_iv(out / MIMIC_IV, population, ids, rng, mimic_iv_version)
    if not metadata_only:
        render_images(population, effects, release, images["path"].to_list(), images["study"].to_numpy(),
                      images["ap"].to_numpy(), size=size, seed=seed, workers=workers, progress=progress)
    keys = [str(value) for value in ids["study_id"]]
    record = effects_record(population, effects, layout="mimic", n=n, size=size, seed=seed, keys=keys)
    record["mimic_iv_version"] = mimic_iv_version
    (out / EFFECTS_NAME).write_text(json.dumps(record, indent=1))
    return out


def _identifiers(population, rng: np.random.Generator) -> dict:
    subjects = np.sort(10_000_000 + rng.choice(9_999_999, size=population.n_patients, replace=False))
    studies = 50_000_000 + rng.choice(9_999_999, size=population.patient.size, replace=False)
    anchor_year = rng.integers(2110, 2190, size=population.n_patients)
    return {"subject_id": subjects, "study_id": studies, "anchor_year": anchor_year,
            "subject_of_study": subjects[population.patient]}


def _write_release(release: Path, population, ids: dict, rng: np.random.Generator, seed: int) -> pl.DataFrame:
    study = np.repeat(np.arange(population.patient.size), population.images)
    first = np.r_[0, np.cumsum(population.images)[:-1]]
    second = (np.arange(study.size) - np.repeat(first, population.images)) > 0
    words = rng.integers(0, 2**32, size=(study.size, 5), dtype=np.uint64)
    dicom = np.array(["-".join(f"{w:08x}" for w in row) for row in words], dtype=object)
    ap = (rng.random(study.size) < marginals()["mimic"]["ap_share_of_frontal"]) & ~second
    view = np.where(second, np.where(rng.random(study.size) < 0.3, "LL", "LATERAL"), np.where(ap, "AP", "PA")).astype(object)
    view[second & (rng.random(study.size) < 0.02)] = None
    subject, study_id = ids["subject_of_study"][study], ids["study_id"][study]
    year = ids["anchor_year"][population.patient[study]] + (population.study[study] - 1) // 2
    date = year * 10000 + rng.integers(1, 13, study.size) * 100 + rng.integers(1, 29, study.size)
    procedure = np.where(ap, "CHEST (PORTABLE AP)", "CHEST (PA AND LAT)")
    size = 256
    metadata = table({
        "dicom_id": dicom, "subject_id": subject, "study_id": study_id, "PerformedProcedureStepDescription": procedure.astype(object),
        "ViewPosition": view, "Rows": np.full(study.size, size), "Columns": np.full(study.size, size), "StudyDate": date,
        "StudyTime": np.round(rng.uniform(0, 235959, study.size), 3), "ProcedureCodeSequence_CodeMeaning": procedure.astype(object),
        "ViewCodeSequence_CodeMeaning": np.where(second, "lateral", np.where(ap, "antero-posterior", "postero-anterior")).astype(object),
        "PatientOrientationCodeSequence_CodeMeaning": np.where(ap, "Recumbent", "Erect").astype(object),
    })
    write_csv_gz(metadata, release / f"{PREFIX}metadata.csv.gz")
    groups = split_patients(ids["subject_id"].tolist(), SPLIT_SHARES, seed) if population.n_patients >= 3 else [set(ids["subject_id"].tolist()), set(), set()]
    split_of = {s: name for name, members in zip(("train", "validate", "test"), groups) for s in members}
    write_csv_gz(table({"dicom_id": dicom, "study_id": study_id, "subject_id": subject,
                        "split": np.array([split_of[s] for s in subject], dtype=object)}), release / f"{PREFIX}split.csv.gz")
    _write_labels(release, population, ids, rng)
    path = [f"files/p{str(s)[:2]}/p{s}/s{t}/{d}.jpg" for s, t, d in zip(subject, study_id, dicom)]
    return pl.DataFrame({"study": study, "path": path, "ap": ap})


def _write_labels(release: Path, population, ids: dict, rng: np.random.Generator) -> None:
    negbio = population.codes.copy()
    negbio[(negbio == -1) & (rng.random(negbio.shape) < 0.2)] = BLANK
    for name, codes in (("chexpert", population.codes), ("negbio", negbio)):
        text = label_text(codes)
        text = {column: text[column] for column in sorted(text)}  # released in alphabetical order
        labels = table({"subject_id": ids["subject_of_study"], "study_id": ids["study_id"], **text})
        write_csv_gz(labels.sort("subject_id", "study_id"), release / f"{PREFIX}{name}.csv.gz")


def _raw_strings(groups: np.ndarray, variants: dict, rng: np.random.Generator) -> np.ndarray:
    """A raw release string for each group value (None: one of the "unknown" strings), drawn among its variants."""
    keys = np.array(["unknown" if group is None else group for group in groups], dtype=object)
    raw = np.empty(groups.size, dtype=object)
    for group, choices in variants.items():
        where = np.flatnonzero(keys == group)
        raw[where] = rng.choice(choices, size=where.size)
    return raw


def _write_mimic_iv(folder: Path, population, ids: dict, rng: np.random.Generator, version: int) -> None:
    layout = marginals()["mimic"]
    first_study = np.r_[0, np.flatnonzero(np.diff(population.patient)) + 1]
    keep = rng.random(population.n_patients) >= MISSING_PATIENT_ROW
    anchor_age = np.where(population.first_age > 89, 91, population.first_age)
    patients = table({
        "subject_id": ids["subject_id"][keep], "gender": population.sex[first_study][keep].astype(object),
        "anchor_age": anchor_age[keep], "anchor_year": ids["anchor_year"][keep],
        "anchor_year_group": np.full(int(keep.sum()), "2011 - 2013", dtype=object), "dod": np.full(int(keep.sum()), None, dtype=object),
    })
    sub = folder / ("hosp" if version == 2 else "core")
    write_csv_gz(patients, sub / "patients.csv.gz")
    race = population.race[first_study]
    insurance = population.insurance[first_study]
    has = rng.random(population.n_patients) >= layout["no_admission_share"]
    count = np.where(has, rng.geometric(0.6, population.n_patients), 0)
    patient = np.repeat(np.arange(population.n_patients), count)
    adm_race, adm_insurance = race[patient].copy(), insurance[patient].copy()
    conflict = np.flatnonzero(has & (rng.random(population.n_patients) < layout["conflicting_admission_share"])
                              & np.array([g is not None for g in race]))
    races, plans = [g for g in layout["race"] if g != "unknown"], list(layout["insurance"])
    other_race = np.array([rng.choice([g for g in races if g != race[p]]) for p in conflict], dtype=object)
    other_insurance = np.array([rng.choice([g for g in plans if g != insurance[p]]) for p in conflict], dtype=object)
    patient = np.r_[patient, conflict]
    adm_race, adm_insurance = np.r_[adm_race, other_race], np.r_[adm_insurance, other_insurance]
    order = np.argsort(patient, kind="stable")
    patient, adm_race, adm_insurance = patient[order], adm_race[order], adm_insurance[order]
    raw_race = _raw_strings(adm_race, layout["raw_race" if version == 2 else "raw_race_v1"], rng)
    year = ids["anchor_year"][patient] + rng.integers(0, 3, patient.size)
    admittime = np.array([f"{y}-0{m}-1{d} 0{h}:00:00" for y, m, d, h in
                          zip(year, rng.integers(1, 10, patient.size), rng.integers(0, 10, patient.size), rng.integers(0, 10, patient.size))], dtype=object)
    columns = {"subject_id": ids["subject_id"][patient], "hadm_id": 20_000_000 + np.arange(patient.size), "admittime": admittime,
               "dischtime": admittime, "deathtime": np.full(patient.size, None, dtype=object),
               "admission_type": np.full(patient.size, "EW EMER.", dtype=object)}
    if version == 2:
        columns["admit_provider_id"] = np.full(patient.size, "P00000", dtype=object)
    columns.update({"admission_location": np.full(patient.size, "EMERGENCY ROOM", dtype=object),
                    "discharge_location": np.full(patient.size, "HOME", dtype=object),
                    "insurance": _raw_strings(adm_insurance, layout["raw_insurance"], rng),
                    "language": np.full(patient.size, "ENGLISH", dtype=object),
                    "marital_status": np.full(patient.size, "MARRIED", dtype=object),
                    ("race" if version == 2 else "ethnicity"): raw_race,
                    "edregtime": admittime, "edouttime": admittime, "hospital_expire_flag": np.zeros(patient.size, dtype=np.int64)})
    write_csv_gz(table(columns), sub / "admissions.csv.gz")
