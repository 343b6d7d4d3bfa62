"""Names shared by every layer: splits, sexes, age groups, label columns, prediction column prefixes.

The label set is NIH ChestX-ray14's, as the canonical manifest names its columns.
"""

from __future__ import annotations

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""The splits of a manifest or task (patient-disjoint)."""
EVALUATED_SPLITS: tuple[str, ...] = ("val", "test")
"""The splits a prediction file holds: val (thresholds, selection) and test (every reported figure)."""
SEXES: tuple[str, ...] = ("F", "M")

AGE_THRESHOLD = 60.0
"""The seed study's age groups: young is age < 60, old is age >= 60."""
AGE_GROUPS: tuple[str, str] = ("<60", ">=60")

LABEL_PREFIX = "y_"
PROBABILITY_PREFIX = "p_"

RANDOM_INIT = "random-init"
"""The weights tag (and digest) of a randomly initialised encoder: its results are no medical finding."""

FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No_Finding"
"""Manifest column for the official label "No Finding" (underscore so it works as a column suffix)."""

LABEL_COLUMNS: tuple[str, ...] = FINDINGS + (NO_FINDING,)

SEED_STUDY_CLASSES: tuple[str, ...] = (
    "Cardiomegaly",
    "Effusion",
    "Atelectasis",
    "Pneumothorax",
    "Edema",
    "Consolidation",
)
"""The six classes of the seed study's NIH 6x200 subset (Sun et al., ISBI 2025), in the study's order."""


def official_name(column: str) -> str:
    """The name the official CSV uses for a manifest label column ("No_Finding" -> "No Finding")."""
    return "No Finding" if column == NO_FINDING else column


def label_column(name: str) -> str:
    """The prediction / task column of a class's 0/1 label: "y_<class>"."""
    return LABEL_PREFIX + name


def probability_column(name: str) -> str:
    """The prediction column of a class's probability: "p_<class>"."""
    return PROBABILITY_PREFIX + name


def age_group(age: float | None) -> str | None:
    """"<60" or ">=60" (None when the age is unknown), the seed study's age groups."""
    if age is None or age != age:
        return None
    return AGE_GROUPS[0] if age < AGE_THRESHOLD else AGE_GROUPS[1]
