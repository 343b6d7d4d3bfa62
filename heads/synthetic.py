"""Synthetic embeddings with a planted, known signal, for tests and `bench perf heads`.

Not a model of real X-ray embeddings: rows belong to patients (images of one patient share an offset), each
label has a direction in embedding space that positive images lean towards, and each class has text prompt
embeddings near its direction, so zero-shot works above chance. Numbers from it are never medical findings.

A planted subgroup effect (`GroupEffect`) mirrors in embedding space what `bench data synth` plants in its films
(lower contrast and more noise for one group): the patients of one group (a minority, `share`) have fainter
findings (`contrast`), partly turned towards directions of their own (`turn`: a changed film changes what an
encoder sees, so a classifier fitted mostly on the other group misses part of it), noisier embeddings (`noise`)
and an embedding that carries the group itself (`encoding`). The truth is known, so tests can check that a
mitigation shrinks the gap it causes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupEffect:
    """A planted subgroup effect on group 1 (see the module docstring); sizes are fractions of the signal."""

    share: float = 0.3
    contrast: float = 0.4
    turn: float = 0.8
    noise: float = 0.3
    encoding: float = 1.0


@dataclass(frozen=True)
class SyntheticEmbeddings:
    image: np.ndarray  # [n, dim] float16
    labels: np.ndarray  # [n, classes] int8 0/1 (multi-label) or [n] int64 class index (single-label)
    patient: np.ndarray  # [n] int64 patient index
    split: np.ndarray  # [n] "train" / "val" / "test", patient-disjoint
    text: np.ndarray  # [classes * prompts_per_class, dim] float32
    text_class: np.ndarray  # [classes * prompts_per_class] class index of each prompt
    group: np.ndarray | None = None  # [n] 0/1 (1: the group of the planted effect), a patient attribute

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
    group_effect: GroupEffect | None = None,
    seed: int = 0,
) -> SyntheticEmbeddings:
    """Embeddings [n, dim] (float16) with labels that depend on them through planted directions.

    `signal=0` gives pure noise (labels independent of the embeddings). Multi-label prevalences range
    from `min_prevalence` (1%) to 50% like NIH's findings; single-label classes are balanced.
    `group_effect`: a planted subgroup effect (`GroupEffect`); the result's `group` says who has it.
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
    group = None
    if group_effect is not None:
        group = (rng.random(n_patients) < group_effect.share).astype(np.int8)[patient]
        image += _planted(group_effect, group.astype(bool), signal * leaning, directions, rng)
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
        group=group,
    )


def _planted(effect: GroupEffect, member: np.ndarray, leaning: np.ndarray, directions: np.ndarray, rng) -> np.ndarray:
    """What the effect adds to the embeddings: for the group's rows, the findings' trace is replaced by a
    fainter one partly along directions of the group's own, plus noise and a group direction."""
    own = rng.standard_normal(directions.shape)
    own -= (own * directions).sum(axis=1, keepdims=True) * directions  # orthogonal to each shared direction
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    angle = effect.turn * np.pi / 2
    turned = np.cos(angle) * directions + np.sin(angle) * own
    added = np.zeros((member.size, directions.shape[1]))
    rows = np.flatnonzero(member)
    added[rows] = leaning[rows] @ ((1 - effect.contrast) * turned - directions)
    added[rows] += effect.noise * rng.standard_normal((rows.size, directions.shape[1]))
    encoded = rng.standard_normal(directions.shape[1])
    added[rows] += effect.encoding * encoded / np.linalg.norm(encoded)
    return added
