"""Synthetic embeddings with a planted, known signal, for tests and `bench perf heads`.

Not a model of real X-ray embeddings: rows belong to patients (images of one patient share an offset), each
label has a direction in embedding space that positive images lean towards, and each class has text prompt
embeddings near its direction, so zero-shot works above chance. Numbers from it are never medical findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticEmbeddings:
    image: np.ndarray  # [n, dim] float16
    labels: np.ndarray  # [n, classes] int8 0/1 (multi-label) or [n] int64 class index (single-label)
    patient: np.ndarray  # [n] int64 patient index
    split: np.ndarray  # [n] "train" / "val" / "test", patient-disjoint
    text: np.ndarray  # [classes * prompts_per_class, dim] float32
    text_class: np.ndarray  # [classes * prompts_per_class] class index of each prompt

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def synthetic_embeddings(
    n: int = 2000,
    dim: int = 64,
    n_classes: int = 15,
    *,
    kind: str = "multi",
    signal: float = 1.0,
    images_per_patient: float = 3.0,
    prompts_per_class: int = 3,
    min_prevalence: float = 0.01,
    seed: int = 0,
) -> SyntheticEmbeddings:
    """Embeddings [n, dim] (float16) with labels that depend on them through planted directions.

    `signal=0` gives pure noise (labels independent of the embeddings). Multi-label prevalences range
    from `min_prevalence` (1%) to 50% like NIH's findings; single-label classes are balanced.
    """
    rng = np.random.default_rng(seed)
    n_patients = max(1, int(round(n / images_per_patient)))
    patient = np.sort(rng.integers(0, n_patients, n))
    directions = rng.standard_normal((n_classes, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    if kind == "multi":
        prevalence = np.geomspace(min_prevalence, 0.5, n_classes)
        labels = (rng.random((n, n_classes)) < prevalence).astype(np.int8)
        leaning = labels.astype(np.float64)
    elif kind == "single":
        labels = rng.integers(0, n_classes, n)
        leaning = np.eye(n_classes)[labels]
    else:
        raise ValueError(f"kind must be 'multi' or 'single', got {kind!r}")
    patient_offset = 0.5 * rng.standard_normal((n_patients, dim))
    image = patient_offset[patient] + signal * leaning @ directions + rng.standard_normal((n, dim))
    image = (image / np.sqrt(dim)).astype(np.float16)

    patient_split = rng.choice(np.array(["train", "val", "test"]), size=n_patients, p=[0.7, 0.1, 0.2])
    text_class = np.repeat(np.arange(n_classes), prompts_per_class)
    text = directions[text_class] + 0.3 * rng.standard_normal((len(text_class), dim)) / np.sqrt(dim)
    return SyntheticEmbeddings(
        image=image,
        labels=labels,
        patient=patient,
        split=patient_split[patient],
        text=text.astype(np.float32),
        text_class=text_class,
    )
