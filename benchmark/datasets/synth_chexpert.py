"""A synthetic dataset in exactly the CheXpert layout, with planted race effects (`synth_population`).

`write_chexpert_synthetic(out, n=1000, ...)` writes:

    out/CheXpert-v1.0-small/train.csv, valid.csv   Path (with the release prefix), Sex, Age, Frontal/Lateral, AP/PA,
                                                   the 14 observations coded 1.0 / 0.0 / -1.0 / blank
    out/CheXpert-v1.0-small/test_labels.csv        the test set's labels (Path without prefix, 0.0 / 1.0), unless
                                                   test_set=False
    out/CheXpert-v1.0-small/{train,valid,test}/patientNNNNN/studyK/viewJ_{frontal,lateral}.jpg   phantoms
    out/CHEXPERT DEMO.xlsx (or .csv)               PATIENT, GENDER, AGE_AT_CXR, PRIMARY_RACE, ETHNICITY
    out/synthetic_effects.json                     what was planted and every flipped study

Valid and test labels are certain (radiologist-style: uncertain drawn as 0 or 1, blank as 0), as in the
release. `benchmark.datasets.chexpert.load_chexpert` reads the folder unchanged. Synthetic: for testing the
software and the fairness tools, never medicine.
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
from benchmark.datasets.splits import split_patients
from benchmark.datasets.synth import EFFECTS_NAME, parse_effects, prepare_folder
from benchmark.datasets.synth_population import (
    CxrEffect, effects_record, label_text, marginals, plant_underdiagnosis,
    render_images, sample_population, table,
)

RELEASE = "CheXpert-v1.0-small"
DEMO_NAME = "CHEXPERT DEMO"
DEFAULT_EFFECTS: tuple[str, ...] = ("underdiagnosis:Black=0.3", "contrast:F=0.2")
FILE_SHARES = {"valid": 0.1, "test": 0.15}


def write_chexpert_synthetic(
    out: str | os.PathLike, *, n: int = 1000, size: int = 256, seed: int = 0,
    effects: str | Iterable[str] | None = DEFAULT_EFFECTS, test_set: bool = True, demographics: str = "xlsx",
    metadata_only: bool = False, workers: int = 0, overwrite: bool = False, progress: Progress = SILENT,
) -> Path:
    """Write a synthetic CheXpert-layout dataset of `n` images into `out`; return the folder (see the module
    docstring). `metadata_only` writes every file but the images (for metadata benchmarks)."""
    _check(n, size, demographics)
    effects = parse_effects(effects, CxrEffect)
    out = Path(out).expanduser()
    prepare_folder(out, overwrite, (RELEASE, f"{DEMO_NAME}.xlsx", f"{DEMO_NAME}.csv"))
    population = sample_population(n, "chexpert", seed)
    plant_underdiagnosis(population, effects, seed)
    file_of_patient, number = _files(population, test_set, seed)
    images = _images(population, file_of_patient, number, seed)
    release = out / RELEASE
    release.mkdir(parents=True, exist_ok=True)
    _write_label_files(release, population, images, seed)
    _write_demographics(out, population, number, demographics, seed)
    if not metadata_only:
        render_images(population, effects, release, images["relative"].to_list(), images["study"].to_numpy(),
                      images["ap"].to_numpy(), size=size, seed=seed, workers=workers, progress=progress)
    keys = [f"patient{number[p]:05d}/study{s}" for p, s in zip(population.patient, population.study)]
    record = effects_record(population, effects, layout="chexpert", n=n, size=size, seed=seed, keys=keys)
    (out / EFFECTS_NAME).write_text(json.dumps(record, indent=1))
    return out


def _check(n: int, size: int, demographics: str) -> None:
    if n < 1:
        raise BenchError(f"--n {n} must be at least 1.")
    if not 16 <= size <= 4096:
        raise BenchError(f"--size {size} must be between 16 and 4096 pixels.")
    if demographics not in ("xlsx", "csv", "none"):
        raise BenchError(f"demographics {demographics!r} must be xlsx, csv or none.")


def _files(population, test_set: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(file of each patient: train / valid / test, the patient's number in the release), numbered train first."""
    patients = np.arange(population.n_patients)
    shares = (1 - FILE_SHARES["valid"] - FILE_SHARES["test"], FILE_SHARES["valid"], FILE_SHARES["test"]) if test_set \
        else (1 - FILE_SHARES["valid"], FILE_SHARES["valid"], 0.0)
    groups = split_patients(patients.tolist(), shares, seed) if patients.size >= 3 else [set(patients.tolist()), set(), set()]
    file_of_patient = np.empty(patients.size, dtype=object)
    for name, members in zip(("train", "valid", "test"), groups):
        file_of_patient[sorted(members)] = name
    order = np.argsort([("train", "valid", "test").index(f) for f in file_of_patient], kind="stable")
    number = np.empty(patients.size, dtype=np.int64)
    number[order] = np.arange(1, patients.size + 1)
    return file_of_patient, number


def _images(population, file_of_patient: np.ndarray, number: np.ndarray, seed: int) -> pl.DataFrame:
    """One row per image: its study, file, relative path and view."""
    study = np.repeat(np.arange(population.patient.size), population.images)
    first = np.r_[0, np.cumsum(population.images)[:-1]]
    view = np.arange(study.size) - np.repeat(first, population.images) + 1
    patient = population.patient[study]
    rng = np.random.default_rng([seed, 13])
    ap = rng.random(study.size) < marginals()["chexpert"]["ap_share_of_frontal"]
    frame = pl.DataFrame({
        "study": study, "file": file_of_patient[patient].astype(str), "number": number[patient],
        "study_number": population.study[study], "view": view, "frontal": view == 1, "ap": ap & (view == 1),
    })
    return frame.with_columns(
        folder=pl.col("file") + "/patient" + pl.col("number").cast(pl.Utf8).str.zfill(5),
    ).with_columns(
        relative=pl.col("folder") + "/study" + pl.col("study_number").cast(pl.Utf8) + "/view" + pl.col("view").cast(pl.Utf8)
        + pl.when(pl.col("frontal")).then(pl.lit("_frontal.jpg")).otherwise(pl.lit("_lateral.jpg")),
    )


def _write_label_files(release: Path, population, images: pl.DataFrame, seed: int) -> None:
    codes = population.codes[images["study"].to_numpy()]
    certain = codes.copy()
    rng = np.random.default_rng([seed, 17])
    uncertain = certain == -1
    certain[uncertain] = rng.random(int(uncertain.sum())) < 0.5
    certain[certain == 2] = 0
    study = images["study"].to_numpy()
    columns = {
        "Path": (RELEASE + "/" + images["relative"]).to_numpy(),
        "Sex": np.where(population.sex[study] == "M", "Male", "Female"),
        "Age": population.age[study],
        "Frontal/Lateral": np.where(images["frontal"].to_numpy(), "Frontal", "Lateral"),
        "AP/PA": np.where(images["frontal"].to_numpy(), np.where(images["ap"].to_numpy(), "AP", "PA"), None),
    }
    for name, rows, labels in (("train", images["file"] == "train", codes), ("valid", images["file"] == "valid", certain)):
        keep = rows.to_numpy()
        frame = table({**{k: v[keep] for k, v in columns.items()}, **{k: v[keep] for k, v in label_text(labels).items()}})
        frame.write_csv(release / f"{name}.csv")
    test = (images["file"] == "test").to_numpy()
    if test.any():
        frame = table({"Path": images["relative"].to_numpy()[test], **{k: v[test] for k, v in label_text(certain).items()}})
        frame.write_csv(release / "test_labels.csv")


def _write_demographics(out: Path, population, number: np.ndarray, fmt: str, seed: int) -> None:
    if fmt == "none":
        return
    layout = marginals()["chexpert"]
    rng = np.random.default_rng([seed, 19])
    first_study = np.r_[0, np.flatnonzero(np.diff(population.patient)) + 1]
    race = population.race[first_study]
    raw = [rng.choice(layout["raw_race"][group or "unknown"]) for group in race]
    ethnicity = [layout["raw_ethnicity"]["Hispanic/Latino"] if group == "Hispanic/Latino"
                 else rng.choice(layout["raw_ethnicity"]["default"]) for group in race]
    frame = pl.DataFrame({
        "PATIENT": [f"patient{value:05d}" for value in number],
        "GENDER": np.where(population.sex[first_study] == "M", "Male", "Female"),
        "AGE_AT_CXR": population.first_age,
        "PRIMARY_RACE": raw,
        "ETHNICITY": ethnicity,
    }).sort("PATIENT")
    if fmt == "xlsx":
        frame.write_excel(out / f"{DEMO_NAME}.xlsx", autofit=False)
    else:
        frame.write_csv(out / f"{DEMO_NAME}.csv")
