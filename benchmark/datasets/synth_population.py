"""A synthetic population of chest X-ray studies for the CheXpert and MIMIC-CXR layouts, with planted effects.

Shared by `synth_chexpert` and `synth_mimic`, which write it in each release's exact layout. Vectorised with
numpy, so that full-size metadata (hundreds of thousands of images) is drawn in seconds for `bench perf data`.

Per patient: sex, first age, race group (or unknown), insurance group, number of studies; per study: age (one
year per follow-up), the 14 observations coded 1 / 0 / -1 (uncertain) / blank from rough real shares
(`cxr_marginals.json`); a share of studies are healthy (No Finding 1.0, no pathology). Per study 1 or 2 images
(the second a lateral).

Planted effects (`KIND:GROUP=SIZE`); groups: F, M, young (< 60), old (>= 60), the race groups White, Black,
Asian, Hispanic, and the insurance groups Medicaid, Medicare (judged per study):

- `underdiagnosis:G=s`  each study of group G that is not truly No Finding (a positive or uncertain pathology) is
                        recorded as healthy with probability s: its pathologies blank, No Finding 1.0 (a labelling
                        bias of the kind Seyyed-Kalantari et al. 2021 measured). Against the truth, the recorded
                        No Finding label's false-positive rate (underdiagnosis) is then s in G and 0 elsewhere;
                        effects on overlapping groups compound (1 - prod(1 - s)).
- `contrast:G=s`, `noise:G=s`  as in the NIH layout, on the drawn images.

Every flipped study is listed in the layout's `synthetic_effects.json`, so the truth is known.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from benchmark.core.schema import CHEXPERT_LABELS, NO_FINDING
from benchmark.datasets.labels import BLANK
from benchmark.datasets.synth import BASE_NOISE, Effect

MARGINALS_FILE = Path(__file__).with_name("cxr_marginals.json")
PATHOLOGIES = tuple(name for name in CHEXPERT_LABELS if name not in (NO_FINDING, "Support_Devices"))
RACE_GROUPS = {"White": "White", "Black": "Black", "Asian": "Asian", "Hispanic": "Hispanic/Latino"}
TRACES = {
    "Enlarged_Cardiomediastinum": "Cardiomegaly", "Cardiomegaly": "Cardiomegaly", "Lung_Opacity": "Infiltration",
    "Lung_Lesion": "Nodule", "Edema": "Edema", "Consolidation": "Consolidation", "Pneumonia": "Pneumonia",
    "Atelectasis": "Atelectasis", "Pneumothorax": "Pneumothorax", "Pleural_Effusion": "Effusion",
    "Pleural_Other": "Pleural_Thickening",
}
"""The phantom trace drawn for each positive observation (Fracture and Support Devices leave none)."""


@dataclass(frozen=True)
class CxrEffect(Effect):
    """A planted effect of the CheXpert / MIMIC layouts (see the module docstring)."""

    KINDS = {
        "underdiagnosis": "a sick study is recorded as No Finding with probability = size",
        "contrast": "contrast multiplied by (1 - size)",
        "noise": "extra Gaussian noise, standard deviation = size (intensity 0..1)",
    }
    GROUPS = {"F": "sex F", "M": "sex M", "young": "age < 60", "old": "age >= 60",
              **{name: f"race {group}" for name, group in RACE_GROUPS.items()},
              "Medicaid": "insurance Medicaid", "Medicare": "insurance Medicare"}


@lru_cache(maxsize=1)
def marginals() -> dict:
    return json.loads(MARGINALS_FILE.read_text())


@dataclass
class Population:
    """Studies (one entry per study) of the synthetic patients."""

    patient: np.ndarray  # int, 0-based patient index
    study: np.ndarray  # int, 1-based study number within the patient
    sex: np.ndarray  # "F" / "M"
    age: np.ndarray  # int years
    first_age: np.ndarray  # int years, per patient (at the first study)
    race: np.ndarray  # group name or None (unknown)
    insurance: np.ndarray  # group name or None
    codes: np.ndarray  # int8 [studies, 14] in CHEXPERT_LABELS order: 1, 0, -1, BLANK (as recorded)
    truth: np.ndarray  # the same before any planted effect
    images: np.ndarray  # int, 1 or 2 images per study
    flipped: np.ndarray  # bool, recorded as healthy by an underdiagnosis effect

    @property
    def n_patients(self) -> int:
        return int(self.patient.max()) + 1 if self.patient.size else 0

    def in_group(self, group: str) -> np.ndarray:
        """Which studies belong to an effect group."""
        if group in ("F", "M"):
            return self.sex == group
        if group in ("young", "old"):
            return (self.age < 60) if group == "young" else (self.age >= 60)
        if group in RACE_GROUPS:
            return self.race == RACE_GROUPS[group]
        return self.insurance == group


def _categorical(rng: np.random.Generator, shares: dict, size: int) -> np.ndarray:
    names = list(shares)
    weights = np.asarray([shares[name] for name in names], dtype=float)
    drawn = np.asarray(names, dtype=object)[rng.choice(len(names), size=size, p=weights / weights.sum())]
    drawn[drawn == "unknown"] = None
    return drawn


def _patients(n_images: int, layout: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patient of each study, study number, images of each study) for exactly `n_images` images."""
    mean = layout["studies_per_patient_mean"]
    extra = layout.get("extra_lateral_share", layout.get("images_per_study_extra_share", 0.0))
    guess = int(n_images / (mean * (1 + extra))) + 16
    while True:
        studies = rng.geometric(1.0 / mean, size=guess)
        patient = np.repeat(np.arange(guess), studies)
        images = 1 + (rng.random(patient.size) < extra)
        if images.sum() >= n_images:
            break
        guess *= 2
    last = int(np.searchsorted(np.cumsum(images), n_images))
    patient, images = patient[: last + 1], images[: last + 1].copy()
    images[-1] -= int(images.sum() - n_images)
    first = np.r_[0, np.flatnonzero(np.diff(patient)) + 1]
    study = np.arange(patient.size) - np.repeat(first, np.diff(np.r_[first, patient.size])) + 1
    return patient, study, images


def _labels(n: int, healthy_share: float, rng: np.random.Generator) -> np.ndarray:
    shares = marginals()["labels"]["shares"]
    codes = np.full((n, len(CHEXPERT_LABELS)), BLANK, dtype=np.int8)
    for name, (positive, negative, uncertain) in shares.items():
        u = rng.random(n)
        column = CHEXPERT_LABELS.index(name)
        codes[u < positive, column] = 1
        codes[(u >= positive) & (u < positive + negative), column] = 0
        codes[(u >= positive + negative) & (u < positive + negative + uncertain), column] = -1
    healthy = rng.random(n) < healthy_share
    pathology = [CHEXPERT_LABELS.index(name) for name in PATHOLOGIES]
    codes[np.ix_(healthy, pathology)] = np.where(codes[np.ix_(healthy, pathology)] == 0, 0, BLANK)
    _set_no_finding(codes)
    return codes


def _set_no_finding(codes: np.ndarray) -> None:
    """No Finding 1.0 where no pathology is positive or uncertain, else blank (CheXpert's rule)."""
    pathology = [CHEXPERT_LABELS.index(name) for name in PATHOLOGIES]
    sick = np.isin(codes[:, pathology], (1, -1)).any(axis=1)
    codes[:, CHEXPERT_LABELS.index(NO_FINDING)] = np.where(sick, BLANK, 1)


def sample_population(n_images: int, layout_name: str, seed: int) -> Population:
    """Patients and studies of one layout ("chexpert" or "mimic") adding up to exactly `n_images` images."""
    layout = marginals()[layout_name]
    rng = np.random.default_rng([seed, 7])
    patient, study, images = _patients(n_images, layout, rng)
    n_patients = int(patient.max()) + 1
    sex = np.where(rng.random(n_patients) < layout["male_share"], "M", "F")
    first_age = np.clip(rng.normal(layout["age_mean"], layout["age_sd"], n_patients), 18, 90)
    race = _categorical(rng, layout["race"], n_patients)
    insurance = _categorical(rng, layout.get("insurance", {"unknown": 1.0}), n_patients)
    first_age = np.floor(first_age).astype(np.int64)
    age = first_age[patient] + (study - 1) // 2  # a year every second study (MIMIC's anchor ages agree)
    codes = _labels(patient.size, layout["healthy_study_share"], rng)
    return Population(patient=patient, study=study, sex=sex[patient], age=age, first_age=first_age, race=race[patient],
                      insurance=insurance[patient], codes=codes, truth=codes.copy(), images=images,
                      flipped=np.zeros(patient.size, dtype=bool))


def plant_underdiagnosis(population: Population, effects, seed: int) -> None:
    """Record sick studies of the effects' groups as healthy (see the module docstring); sets `flipped`."""
    pathology = [CHEXPERT_LABELS.index(name) for name in PATHOLOGIES]
    sick = population.codes[:, CHEXPERT_LABELS.index(NO_FINDING)] != 1
    rng = np.random.default_rng([seed, 11])
    for effect in effects:
        if effect.kind != "underdiagnosis":
            continue
        hit = sick & population.in_group(effect.group) & ~population.flipped & (rng.random(sick.size) < effect.size)
        population.flipped |= hit
    flipped = population.flipped
    population.codes[np.ix_(flipped, pathology)] = BLANK
    population.codes[flipped, CHEXPERT_LABELS.index(NO_FINDING)] = 1


def render_images(population: Population, effects, folder: Path, relative: list[str], image_study: np.ndarray,
                  ap_view: np.ndarray, *, size: int, seed: int, workers: int, progress) -> None:
    """Draw every image (`relative` paths under `folder`) as a phantom of its study (see `render_jobs`)."""
    from benchmark.datasets.synth import _render_all

    paths = [str(folder / path) for path in relative]
    for parent in {os.path.dirname(path) for path in paths}:
        os.makedirs(parent, exist_ok=True)
    _render_all(render_jobs(population, effects, image_study, paths, ap_view, size=size, seed=seed), workers, progress)


def render_jobs(population: Population, effects, image_study: np.ndarray, paths: list[str], ap_view: np.ndarray,
                *, size: int, seed: int) -> list[tuple]:
    """Jobs for `benchmark.datasets.synth._render_job`: one phantom per image, drawn from its study's true
    (unflipped) labels, with the contrast and noise effects of its groups."""
    contrast = np.ones(population.patient.size)
    noise = np.full(population.patient.size, BASE_NOISE)
    for effect in effects:
        mask = population.in_group(effect.group)
        if effect.kind == "contrast":
            contrast[mask] *= 1 - effect.size
        elif effect.kind == "noise":
            noise[mask] += effect.size
    columns = [(CHEXPERT_LABELS.index(name), trace) for name, trace in TRACES.items()]
    jobs = []
    for index, (path, study) in enumerate(zip(paths, image_study)):
        strengths = np.random.default_rng([seed, 2, index]).uniform(0.6, 1.0, size=len(columns))
        findings: dict[str, float] = {}
        for (column, trace), strength in zip(columns, strengths):
            if population.truth[study, column] == 1:
                findings[trace] = max(findings.get(trace, 0.0), float(strength))
        jobs.append((path, [seed, 1, int(population.patient[study])], [seed, 3, index], population.sex[study] == "F",
                     findings, size, bool(ap_view[index]), float(contrast[study]), float(noise[study])))
    return jobs


def effects_record(population: Population, effects, *, layout: str, n: int, size: int, seed: int, keys: list[str]) -> dict:
    """The `synthetic_effects.json` content: what was planted, group sizes, every flipped study."""
    groups = {name: {"definition": text, "studies": int(population.in_group(name).sum())}
              for name, text in CxrEffect.GROUPS.items()}
    return {
        "generator": f"cxr-fairbench write_{layout}_synthetic",
        "warning": "synthetic phantoms and labels: for testing software and fairness tools, not medical findings",
        "layout": layout, "n": n, "size": size, "seed": seed,
        "groups": groups,
        "effects": [{"kind": e.kind, "group": e.group, "size": e.size, "text": e.text, "meaning": CxrEffect.KINDS[e.kind]}
                    for e in effects],
        "base_noise": BASE_NOISE,
        "sampler": marginals()["source"],
        "underdiagnosis_flips": {"count": int(population.flipped.sum()),
                                 "studies": [key for key, hit in zip(keys, population.flipped) if hit]},
    }


LABEL_TEXT = {1: "1.0", 0: "0.0", -1: "-1.0", BLANK: None}


def label_text(codes: np.ndarray) -> dict[str, np.ndarray]:
    """The release's text coding (1.0 / 0.0 / -1.0 / blank) of each observation, keyed by its official name."""
    text = np.empty(codes.shape, dtype=object)
    for code, value in LABEL_TEXT.items():
        text[codes == code] = value
    return {name.replace("_", " "): text[:, i] for i, name in enumerate(CHEXPERT_LABELS)}


def write_csv_gz(frame, path: Path) -> None:
    """A polars frame as a gzip-compressed CSV (the MIMIC releases' format)."""
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        frame.write_csv(handle)


def table(columns: dict) -> pl.DataFrame:
    """A polars frame of numpy columns; object (text) columns become strings, None written as an empty field."""
    return pl.DataFrame([pl.Series(name, np.asarray(values).tolist(), dtype=pl.Utf8) if np.asarray(values).dtype == object
                         else pl.Series(name, values) for name, values in columns.items()])
