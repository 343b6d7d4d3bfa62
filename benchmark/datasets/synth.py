"""A synthetic dataset in exactly the official NIH ChestX-ray14 layout, with planted subgroup effects.

`write_synthetic(out, n=1000, size=256, seed=0, effects=DEFAULT_EFFECTS)` writes:

    out/Data_Entry_2017_v2020.csv   the v2020 header and value formats (integer ids and ages, labels joined by '|')
    out/images/<patient>_<follow-up>.png   procedural phantoms (see `benchmark.datasets.phantom` for the traces)
    out/train_val_list.txt, out/test_list.txt   a patient-wise split (20% of patients to test)
    out/synthetic_effects.json       what was planted, with sizes, group definitions and every flipped label

`benchmark.datasets.nih.load_nih` reads it unchanged. Everything here is synthetic: results on it test the
software and the fairness tools (which should recover the planted effects), never medicine.

Demographics and labels follow summaries of the real `Data_Entry_2017_v2020.csv` (in `nih_marginals.json`):
patients' sex (56.5% of images male), first-visit age (5-year histogram), images per patient (1-30+; 57% of
patients have one), age rising ~0.3 years per follow-up, AP views (12% of first films, 51% of follow-ups, ~40%
overall), and whole label sets drawn from the 100 most frequent real combinations (96.6% of images), which keeps
prevalences and co-occurrence (e.g. Effusion|Infiltration) realistic.

Deliberate bias of the label sampler: `seed_class_share` (default 0.3) of the images are relabelled as
single-label images of the seed study's six classes (Cardiomegaly, Effusion, Atelectasis, Pneumothorax, Edema,
Consolidation), spread evenly over the 6 classes x 4 sex x age-group cells, so that the `nih6x200` task is
feasible at small n (with n=1000, about 12 images per class and cell on top of the natural ones). This raises
those classes' prevalence well above the real one; set it to 0 for the real marginals.

Planted effects (`kind:group=size`, or `weak_trace:group:Finding=size`); groups are F, M, young (age < 60) and
old (age >= 60), judged per image:

- `contrast:G=s`   films of group G have their contrast multiplied by (1 - s) (less visible anatomy and traces);
- `noise:G=s`      films of group G get extra Gaussian noise of standard deviation s (intensity 0..1; base 0.015);
- `label_noise:G=p` each recorded label set in group G is wrong with probability p: a single-label image of a
                   seed-study class gets another of the six classes; other images get a fresh label set drawn
                   from the real combinations (the image keeps the true finding's trace);
- `weak_trace:G:Finding=s` the Finding's trace is drawn at (1 - s) of its strength in group G.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from benchmark.core.schema import FINDINGS, SEED_STUDY_CLASSES
from benchmark.datasets.phantom import random_anatomy, render
from benchmark.datasets.splits import split_patients
from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress

CSV_NAME = "Data_Entry_2017_v2020.csv"
CSV_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
EFFECTS_NAME = "synthetic_effects.json"
GROUPS: dict[str, str] = {"F": "sex F", "M": "sex M", "young": "age < 60", "old": "age >= 60"}
EFFECT_KINDS: dict[str, str] = {
    "contrast": "contrast multiplied by (1 - size)",
    "noise": "extra Gaussian noise, standard deviation = size (intensity 0..1)",
    "label_noise": "recorded label set wrong with probability = size",
    "weak_trace": "the finding's image trace drawn at (1 - size) of its strength",
}
DEFAULT_EFFECTS: tuple[str, ...] = ("contrast:F=0.3", "noise:F=0.04", "label_noise:old=0.15")
BASE_NOISE = 0.015
TEST_PATIENT_FRACTION = 0.2
FIELD_OF_VIEW_MM = 360.0


def in_group(group: str, sex: str, age: float) -> bool:
    """Whether an image of this sex and age belongs to one of GROUPS."""
    return {"F": sex == "F", "M": sex == "M", "young": age < 60, "old": age >= 60}[group]


@dataclass(frozen=True)
class Effect:
    """One planted subgroup effect (see the module docstring)."""

    kind: str
    group: str
    size: float
    finding: str | None = None

    KINDS = EFFECT_KINDS
    GROUPS = GROUPS
    """The kinds and groups this layout's effects may name (a subclass for another layout replaces them)."""

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise BenchError(f"unknown effect kind {self.kind!r}; use one of {', '.join(self.KINDS)}.")
        if self.group not in self.GROUPS:
            raise BenchError(f"unknown effect group {self.group!r}; use one of {', '.join(self.GROUPS)} (young: age < 60, old: age >= 60).")
        if (self.kind == "weak_trace") != (self.finding is not None):
            raise BenchError("only weak_trace names a finding: write weak_trace:GROUP:Finding=SIZE, the others KIND:GROUP=SIZE.")
        if self.finding is not None and self.finding not in FINDINGS:
            raise BenchError(f"unknown finding {self.finding!r} in a weak_trace effect; use one of {', '.join(FINDINGS)}.")
        limit = 0.5 if self.kind == "noise" else 1.0
        if not 0 <= self.size <= limit:
            raise BenchError(f"effect size {self.size} for {self.kind} must be between 0 and {limit:g}.")

    @property
    def text(self) -> str:
        middle = f"{self.group}:{self.finding}" if self.finding else self.group
        return f"{self.kind}:{middle}={self.size:g}"

    def applies(self, sex: str, age: float) -> bool:
        return in_group(self.group, sex, age)

    @classmethod
    def parse(cls, text: str) -> "Effect":
        head, sep, size = text.strip().partition("=")
        parts = head.split(":")
        try:
            value = float(size)
        except ValueError:
            value = None
        if not sep or value is None or len(parts) not in (2, 3):
            raise BenchError(
                f"effect {text!r} is not KIND:GROUP=SIZE (or weak_trace:GROUP:Finding=SIZE), e.g. contrast:F=0.3, "
                "label_noise:old=0.1, weak_trace:F:Effusion=0.5."
            )
        return cls(kind=parts[0], group=parts[1], size=value, finding=parts[2] if len(parts) == 3 else None)


def parse_effects(effects: str | Iterable[str | Effect] | None, kind: type[Effect] = Effect) -> tuple[Effect, ...]:
    """Effects from a comma-separated string, a list of strings or Effect objects; None, "" or "none" -> none.
    `kind`: the Effect class of the layout (NIH's by default)."""
    if effects is None:
        return ()
    if isinstance(effects, str):
        effects = [] if effects.strip().lower() in ("", "none") else effects.split(",")
    parsed = tuple(effect if isinstance(effect, kind) else kind.parse(effect) for effect in effects)
    seen = [(effect.kind, effect.group, effect.finding) for effect in parsed]
    if len(set(seen)) != len(seen):
        raise BenchError(f"effects {[effect.text for effect in parsed]} repeat a kind for the same group; give each once.")
    return parsed


@lru_cache(maxsize=1)
def nih_marginals() -> dict:
    """Summaries of the real NIH metadata that the sampler follows (see nih_marginals.json)."""
    return json.loads((Path(__file__).with_name("nih_marginals.json")).read_text())


@dataclass
class _Image:
    image_id: str
    patient: int
    follow_up: int
    sex: str
    age: int
    ap_view: bool
    true_labels: tuple[str, ...]
    recorded: tuple[str, ...] = ()


def _sample_population(n: int, rng: np.random.Generator) -> list[_Image]:
    marginals = nih_marginals()
    per_patient = np.asarray(marginals["images_per_patient"]["counts_1_to_30"], dtype=float)
    age_bins = np.asarray(marginals["first_age_bins_5y"]["patients"], dtype=float)
    edges = marginals["first_age_bins_5y"]["edges"]
    male = marginals["male_fraction_of_images"]
    ap = marginals["ap_fraction"]
    step = marginals["age_years_per_follow_up"]
    images: list[_Image] = []
    patient = 0
    while len(images) < n:
        patient += 1
        count = min(int(rng.choice(len(per_patient), p=per_patient / per_patient.sum())) + 1, n - len(images))
        sex = "M" if rng.random() < male else "F"
        bin_index = int(rng.choice(len(age_bins), p=age_bins / age_bins.sum()))
        first_age = float(rng.uniform(edges[bin_index], edges[bin_index + 1]))
        for follow_up in range(count):
            age = int(np.clip(round(first_age + follow_up * step + rng.uniform(0, 1)), 1, 99))
            ap_view = rng.random() < (ap["follow_up"] if follow_up else ap["first_image"])
            images.append(_Image(f"{patient:08d}_{follow_up:03d}.png", patient, follow_up, sex, age, bool(ap_view), ()))
    label_sets, weights = _label_sets()
    draws = rng.choice(len(label_sets), size=len(images), p=weights)
    for image, draw in zip(images, draws):
        image.true_labels = label_sets[draw]
    return images


@lru_cache(maxsize=1)
def _label_sets() -> tuple[list[tuple[str, ...]], np.ndarray]:
    top = nih_marginals()["label_sets"]["top"]
    sets = [tuple(sorted(name.split("|"))) for name, _ in top]
    counts = np.asarray([count for _, count in top], dtype=float)
    return sets, counts / counts.sum()


def _enrich_seed_classes(images: list[_Image], share: float, rng: np.random.Generator) -> dict:
    """Relabel `share` of the images as single-label seed-study classes, evenly over classes x cells."""
    per_slot = int(round(share * len(images) / (len(SEED_STUDY_CLASSES) * 4)))
    placed = {}
    for sex in ("F", "M"):
        for old in (False, True):
            cell = [i for i, image in enumerate(images) if image.sex == sex and (image.age >= 60) == old]
            chosen = rng.permutation(cell)[: per_slot * len(SEED_STUDY_CLASSES)]
            for k, index in enumerate(chosen):
                images[index].true_labels = (SEED_STUDY_CLASSES[k % len(SEED_STUDY_CLASSES)],)
            placed[f"{sex}/{'>=60' if old else '<60'}"] = len(chosen)
    return {"per_class_and_cell_target": per_slot, "relabelled_per_cell": placed}


def _apply_label_noise(images: list[_Image], effects: Sequence[Effect], rng: np.random.Generator) -> list[dict]:
    label_sets, weights = _label_sets()
    flips = []
    noise = [effect for effect in effects if effect.kind == "label_noise"]
    for image in images:
        image.recorded = image.true_labels
        for effect in noise:
            if not effect.applies(image.sex, image.age) or rng.random() >= effect.size:
                continue
            truth = image.true_labels
            if len(truth) == 1 and truth[0] in SEED_STUDY_CLASSES:
                others = [name for name in SEED_STUDY_CLASSES if name != truth[0]]
                image.recorded = (others[int(rng.integers(len(others)))],)
            else:
                while image.recorded == truth:
                    image.recorded = label_sets[int(rng.choice(len(label_sets), p=weights))]
            flips.append({"image_id": image.image_id, "true": "|".join(truth), "recorded": "|".join(image.recorded), "effect": effect.text})
            break
    return flips


def _render_job(job: tuple) -> None:
    path, anatomy_seed, image_seed, female, findings, size, ap_view, contrast, noise = job
    anatomy = random_anatomy(np.random.default_rng(anatomy_seed), female=female)
    pixels = render(anatomy, findings, size=size, rng=np.random.default_rng(image_seed), ap_view=ap_view, contrast=contrast, noise=noise)
    Image.fromarray(pixels).save(path, compress_level=1)


def _jobs(images: list[_Image], effects: Sequence[Effect], out: Path, size: int, seed: int) -> list[tuple]:
    jobs = []
    for index, image in enumerate(images):
        active = [effect for effect in effects if effect.applies(image.sex, image.age)]
        contrast = math.prod(1 - effect.size for effect in active if effect.kind == "contrast")
        noise = BASE_NOISE + sum(effect.size for effect in active if effect.kind == "noise")
        severity = np.random.default_rng([seed, 2, index]).uniform(0.6, 1.0, size=len(image.true_labels))
        findings = {}
        for name, strength in zip(image.true_labels, severity):
            if name == "No Finding":
                continue
            weaken = math.prod(1 - e.size for e in active if e.kind == "weak_trace" and e.finding == name)
            findings[name] = float(strength) * weaken
        jobs.append((
            str(out / "images" / image.image_id), [seed, 1, image.patient], [seed, 3, index], image.sex == "F",
            findings, size, image.ap_view, contrast, noise,
        ))
    return jobs


def _render_all(jobs: list[tuple], workers: int, progress: Progress) -> None:
    with progress.bar("drawing phantoms", total=len(jobs), transient=True) as bar:
        if workers and workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_render_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
                    bar.advance()
        else:
            for job in jobs:
                _render_job(job)
                bar.advance()


def write_synthetic(
    out: str | os.PathLike,
    *,
    n: int = 1000,
    size: int = 256,
    seed: int = 0,
    effects: str | Iterable[str | Effect] | None = DEFAULT_EFFECTS,
    seed_class_share: float = 0.3,
    workers: int = 0,
    overwrite: bool = False,
    progress: Progress = SILENT,
) -> Path:
    """Write a synthetic NIH-layout dataset of `n` images of `size` px into `out`; return the folder.

    Deterministic for (n, size, seed, effects, seed_class_share) whatever `workers` is. `out` must be empty or
    absent unless `overwrite` (which replaces a previous synthetic dataset there, never other folders).
    """
    if n < 1:
        raise BenchError(f"--n {n} must be at least 1.")
    if not 16 <= size <= 4096:
        raise BenchError(f"--size {size} must be between 16 and 4096 pixels.")
    if not 0 <= seed_class_share <= 0.9:
        raise BenchError(f"seed_class_share {seed_class_share} must be between 0 and 0.9.")
    effects = parse_effects(effects)
    out = Path(out).expanduser()
    prepare_folder(out, overwrite)

    rng = np.random.default_rng(seed)
    images = _sample_population(n, rng)
    enrichment = _enrich_seed_classes(images, seed_class_share, rng)
    flips = _apply_label_noise(images, effects, rng)
    jobs = _jobs(images, effects, out, size, seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    _render_all(jobs, workers, progress)

    _write_csv(out, images, size)
    test_patients = split_patients([image.patient for image in images], (1 - TEST_PATIENT_FRACTION, TEST_PATIENT_FRACTION), seed)[1]
    test = sorted(image.image_id for image in images if image.patient in test_patients)
    train_val = sorted(image.image_id for image in images if image.patient not in test_patients)
    (out / "train_val_list.txt").write_text("".join(f"{name}\n" for name in train_val))
    (out / "test_list.txt").write_text("".join(f"{name}\n" for name in test))
    _write_effects(out, images, effects, flips, enrichment, n=n, size=size, seed=seed, share=seed_class_share)
    return out


NIH_OWNED = (CSV_NAME, "train_val_list.txt", "test_list.txt", "images")


def prepare_folder(out: Path, overwrite: bool, owned: tuple[str, ...] = NIH_OWNED) -> None:
    """`out` must be empty or absent; with `overwrite`, a synthetic dataset there (it has synthetic_effects.json)
    loses the entries of its layout (`owned`, files or folders) and nothing else."""
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise BenchError(f"--out {out} is not empty; choose a new folder or pass --overwrite to replace a synthetic dataset there.")
        if not (out / EFFECTS_NAME).is_file():
            raise BenchError(f"--out {out} holds files that are not a synthetic dataset (no {EFFECTS_NAME}); refusing to overwrite it.")
        for name in (*owned, EFFECTS_NAME):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
            else:
                (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _write_csv(out: Path, images: list[_Image], size: int) -> None:
    spacing = FIELD_OF_VIEW_MM / size
    lines = [CSV_HEADER]
    for image in images:
        labels = "|".join(image.recorded) if image.recorded else "No Finding"
        lines.append(
            f"{image.image_id},{labels},{image.follow_up},{image.patient},{image.age},{image.sex},"
            f"{'AP' if image.ap_view else 'PA'},{size},{size},{spacing:.6g},{spacing:.6g}"
        )
    (out / CSV_NAME).write_text("\n".join(lines) + "\n")


def _write_effects(out, images, effects, flips, enrichment, *, n, size, seed, share) -> None:
    group_sizes = {group: sum(in_group(group, image.sex, image.age) for image in images) for group in GROUPS}
    record = {
        "generator": "cxr-fairbench write_synthetic",
        "warning": "synthetic phantoms: for testing software and fairness tools, not medical findings",
        "n": n,
        "size": size,
        "seed": seed,
        "groups": {group: {"definition": definition, "images": group_sizes[group]} for group, definition in GROUPS.items()},
        "effects": [{**asdict(effect), "text": effect.text, "meaning": EFFECT_KINDS[effect.kind]} for effect in effects],
        "base_noise": BASE_NOISE,
        "sampler": {
            "marginals": nih_marginals()["source"],
            "seed_class_share": share,
            "seed_classes": list(SEED_STUDY_CLASSES),
            **enrichment,
        },
        "label_noise_flips": {"count": len(flips), "images": flips},
    }
    (out / EFFECTS_NAME).write_text(json.dumps(record, indent=1))
