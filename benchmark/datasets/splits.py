"""Seeded, patient-disjoint splits.

Patients, not images, are assigned to splits, so that no patient's follow-up images leak between training and
evaluation. Every function takes an explicit seed and never touches global random state.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.core.errors import BenchError


def check_fractions(fractions: tuple[float, ...], *, what: str = "split fractions") -> tuple[float, ...]:
    """Return the fractions if they are non-negative and sum to 1 (within 1e-6), else raise BenchError."""
    fractions = tuple(float(value) for value in fractions)
    if any(value < 0 for value in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise BenchError(f"{what} {fractions} must be non-negative and sum to 1 (e.g. 0.7,0.1,0.2).")
    return fractions


def shuffled_patients(patient_ids, seed: int) -> np.ndarray:
    """The unique patient ids in a seeded random order (independent of the order they were given in)."""
    unique = np.array(sorted(set(patient_ids)), dtype=object)
    return unique[np.random.default_rng(seed).permutation(len(unique))]


def split_patients(patient_ids, fractions: tuple[float, ...], seed: int) -> list[set]:
    """Partition the unique patients into len(fractions) groups of about those shares of patients.

    Group sizes are rounded so that they sum to the number of patients; a group with a non-zero fraction gets at
    least one patient when there are enough patients.
    """
    fractions = check_fractions(fractions)
    order = shuffled_patients(patient_ids, seed)
    sizes = _group_sizes(len(order), fractions)
    groups, start = [], 0
    for size in sizes:
        groups.append(set(order[start : start + size].tolist()))
        start += size
    return groups


def _group_sizes(total: int, fractions: tuple[float, ...]) -> list[int]:
    sizes = [int(math.floor(total * fraction)) for fraction in fractions]
    remainders = sorted(range(len(fractions)), key=lambda i: total * fractions[i] - sizes[i], reverse=True)
    for i in remainders[: total - sum(sizes)]:
        sizes[i] += 1
    for i, fraction in enumerate(fractions):
        if fraction > 0 and sizes[i] == 0:
            donor = max(range(len(sizes)), key=lambda j: sizes[j])
            if sizes[donor] > 1:
                sizes[donor] -= 1
                sizes[i] += 1
    return sizes


def stratified_patient_split(
    patient_ids: np.ndarray, classes: np.ndarray, fractions: tuple[float, ...], seed: int
) -> np.ndarray:
    """Assign each image to a split (0..len(fractions)-1) so that patients stay together and every class is
    spread over the splits in about the given proportions.

    Greedy: patients are visited in a seeded random order (largest first) and each goes to the split whose
    per-class deficit, relative to its target, is largest for that patient's images.
    """
    fractions = np.asarray(check_fractions(fractions))
    patient_ids = np.asarray(patient_ids, dtype=object)
    classes = np.asarray(classes)
    class_values, class_index = np.unique(classes, return_inverse=True)
    totals = np.bincount(class_index, minlength=len(class_values)).astype(float)
    targets = fractions[:, None] * totals[None, :]
    counts = np.zeros_like(targets)
    order = shuffled_patients(patient_ids, seed)
    rows_of = {patient: [] for patient in order}
    for row, patient in enumerate(patient_ids):
        rows_of[patient].append(row)
    order = sorted(order, key=lambda patient: -len(rows_of[patient]))
    assignment = np.empty(len(patient_ids), dtype=np.int64)
    for patient in order:
        rows = rows_of[patient]
        need = np.bincount(class_index[rows], minlength=len(class_values)).astype(float)
        deficit = ((targets - counts) * need[None, :] / np.maximum(totals, 1.0)[None, :]).sum(axis=1)
        deficit[fractions == 0] = -np.inf
        chosen = int(np.argmax(deficit))
        counts[chosen] += need
        assignment[rows] = chosen
    return assignment
