"""What `evaluate` is given, checked and put in shape: labels and probabilities, groups, patients.

Each step is a function of plain arrays that raises BenchError (with the message constants below) on bad
input, so callers and tests can reach every check alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import BenchError
from fairness.groups import ERR_UNKNOWN_ATTRIBUTE, GroupSet, build_groups, parse_attribute_list

ERR_SHAPE = "y_test has shape {y}, p_test has shape {p}; both must be [n images, {c} classes]"
ERR_LABELS = "y_test must hold only 0 and 1; found {value!r} at row {row}, class {cls!r}"
ERR_PROBABILITIES = "p_test must hold probabilities in [0, 1]; found {value!r} at row {row}, class {cls!r}"
ERR_KIND = "kind must be 'single' or 'multi', got {kind!r}"
ERR_SINGLE = "kind='single' needs exactly one positive label per row; row {row} has {count}"
ERR_EMPTY = "no test images to evaluate; the predictions need rows with split 'test'"
ERR_PATIENTS = "patient_ids has {got} values for {n} images; give one patient id per image"
ERR_MASKED_SINGLE = ("y_test has a masked (missing) label at row {row}, class {cls!r}; only multi-label tasks mask "
                     "labels (a single-label row needs its one class)")


def masked_labels(y, kind: str, classes) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels with masked entries (NaN or None: an uncertain label under `--uncertain ignore`) set to 0, and
    `known` [n, C] (False where masked; None when nothing is masked). Only multi-label tasks may mask labels: a
    masked entry is left out of its class's figures (`fairness.passes`), never counted as a negative."""
    y = np.asarray(y)
    if y.dtype == object:
        y = np.array([[np.nan if v is None else v for v in np.atleast_1d(row)] for row in y], dtype=np.float64)
    if not np.issubdtype(y.dtype, np.floating):
        return y, None
    missing = np.isnan(y)
    if not missing.any():
        return y, None
    if kind == "single":
        row, col = np.argwhere(missing.reshape(y.shape[0], -1))[0]
        raise BenchError(ERR_MASKED_SINGLE.format(row=int(row), cls=classes[col]))
    known = ~missing
    return np.where(known, y, 0.0), (known if known.ndim == 2 else known[:, None])


def check_inputs(y, p, kind: str, classes) -> tuple[np.ndarray, np.ndarray]:
    """y as int8 [n, C] 0/1 and p as float64 [n, C] in [0, 1] (single-label: one positive per row)."""
    if kind not in ("single", "multi"):
        raise BenchError(ERR_KIND.format(kind=kind))
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if y.shape != p.shape or y.shape[1] != len(classes):
        raise BenchError(ERR_SHAPE.format(y=y.shape, p=p.shape, c=len(classes)))
    if y.shape[0] == 0:
        raise BenchError(ERR_EMPTY)
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise BenchError(ERR_LABELS.format(value=y[row, col].item(), row=int(row), cls=classes[col]))
    bad = ~((p >= 0) & (p <= 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise BenchError(ERR_PROBABILITIES.format(value=p[row, col].item(), row=int(row), cls=classes[col]))
    if kind == "single":
        counts = y.sum(axis=1)
        wrong = np.flatnonzero(counts != 1)
        if wrong.size:
            raise BenchError(ERR_SINGLE.format(row=int(wrong[0]), count=int(counts[wrong[0]])))
    return y.astype(np.int8), p


@dataclass(frozen=True)
class GroupChoice:
    """The groups to report: the built `GroupSet`, the attributes kept, those without values."""

    groups: GroupSet
    attributes: list[str]
    unavailable: list[str]


def resolve_groups(n: int, *, sex, age, columns, attributes, age_bins, seed_exact: bool) -> GroupChoice:
    """Build the groups of the requested attributes; attributes whose values were not given are reported
    as unavailable (e.g. a file without a sex column), unknown names are an error."""
    attributes = list(parse_attribute_list(attributes))
    if "sex" in attributes and "age" in attributes and "sex_age" not in attributes and sex is not None \
            and age is not None:
        attributes.append("sex_age")  # the seed study's F1 gaps are means over sex x age cells
    available = {"sex": sex is not None, "age": age is not None}
    available.update({name: values is not None for name, values in (columns or {}).items()})  # None: no values
    unavailable = []
    for attribute in attributes:
        parts = [attribute] if attribute in available else attribute.split("_")
        unknown = [part for part in parts if part not in available]
        if unknown:
            raise BenchError(ERR_UNKNOWN_ATTRIBUTE.format(name=attribute, known=", ".join(available)))
        if not all(available[part] for part in parts):
            unavailable.append(attribute)
    attributes = [a for a in attributes if a not in unavailable]
    if not attributes:
        return GroupChoice(overall_only(n), [], unavailable)
    columns = {name: values for name, values in (columns or {}).items() if values is not None}
    groups = build_groups(n=n, sex=sex, age=age, columns=columns, attributes=attributes, age_bins=age_bins,
                          seed_exact=seed_exact)
    return GroupChoice(groups, attributes, unavailable)


def overall_only(n: int) -> GroupSet:
    """The groups when no attribute is reported: every image in one atom ("overall")."""
    return GroupSet(atom_of_image=np.zeros(n, dtype=np.int64), atom_codes=np.zeros((1, 0), dtype=np.int64),
                    base_names=(), base_levels=(), attributes=(), image_codes=np.zeros((n, 0), dtype=np.int64),
                    radix=np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Patients:
    index: np.ndarray  # [n] patient number of each image
    count: int
    note: str


def patient_codes(patient_ids, n: int) -> Patients:
    """Patient number of each image; without ids each image is its own patient (and the note says so)."""
    if patient_ids is None:
        return Patients(np.arange(n), n, "none given: each image is its own patient")
    patient_ids = np.asarray([str(x) for x in patient_ids])
    if patient_ids.shape[0] != n:
        raise BenchError(ERR_PATIENTS.format(got=patient_ids.shape[0], n=n))
    _, index = np.unique(patient_ids, return_inverse=True)
    index = index.reshape(-1)
    return Patients(index, int(index.max()) + 1, "given")
