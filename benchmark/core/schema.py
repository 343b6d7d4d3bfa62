"""Names shared by every layer: splits, sexes, age groups, race and insurance groups, label columns,
prediction column prefixes.

Label columns: `LABEL_COLUMNS` is NIH ChestX-ray14's set (14 findings + No_Finding); CheXpert and MIMIC-CXR
share the 14 CheXpert observations (`CHEXPERT_LABELS`). The canonical manifest holds the union
(`ALL_LABEL_COLUMNS`: NIH's columns first, then the CheXpert-only ones), each dataset filling its own and
leaving the others null. Same names mean the same finding (Cardiomegaly, Edema, ...); NIH's "Effusion" and
CheXpert's "Pleural Effusion" stay separate columns, joined only by the `common` task's name map.
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

CHEXPERT_LABELS: tuple[str, ...] = (
    "No_Finding",
    "Enlarged_Cardiomediastinum",
    "Cardiomegaly",
    "Lung_Opacity",
    "Lung_Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural_Effusion",
    "Pleural_Other",
    "Fracture",
    "Support_Devices",
)
"""The 14 observations of CheXpert and MIMIC-CXR (CheXpert / NegBio labelers), in CheXpert's column order, as
manifest columns (the official name with spaces as underscores)."""

ALL_LABEL_COLUMNS: tuple[str, ...] = LABEL_COLUMNS + tuple(name for name in CHEXPERT_LABELS if name not in LABEL_COLUMNS)
"""Every label column of the canonical manifest: NIH's 15, then the 7 CheXpert-only observations."""

MASKED = -1
"""A masked label (uncertain under `--uncertain ignore`) in integer label arrays: left out of that class's loss
and metrics, never counted as a negative. In frames a masked label is null."""

RACES: tuple[str, ...] = ("White", "Black", "Asian", "Hispanic/Latino", "Other")
"""Race groups (self-reported, as the releases record them). Unknown, declined or unrecorded race is null, never
a group; `Other` is a stated race outside the four."""
INSURANCES: tuple[str, ...] = ("Medicaid", "Medicare", "Other")
"""Insurance groups, the socio-economic proxy of Seyyed-Kalantari et al. (2021); unknown is null."""
ATTRIBUTE_COLUMNS: dict[str, tuple[str, ...]] = {"race": RACES, "insurance": INSURANCES}
"""Optional group columns of manifests, tasks and prediction files, with their allowed values."""

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


EVALUATION_DEFAULTS = {"rank_by": None, "groups": "sex,age,sex*age", "age_bins": "binary", "n_boot": 1000,
                       "n_perm": 1000, "seed": 0, "threshold": "f1", "correction": "holm", "alpha": 0.05,
                       "min_group_size": 30, "min_positives": 20, "seed_exact": False, "reweight_prevalence": False}
"""The leaderboard's evaluation options and their defaults, by the names `bench leaderboard` / `bench report`
(`--n-boot` ...) and experiment files' [leaderboard] tables (`n_boot` ...) use; None: the board's default rank.
`benchmark.leaderboard.options.evaluation_options` turns them into `build` keywords."""
