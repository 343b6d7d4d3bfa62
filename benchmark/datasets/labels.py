"""The NIH ChestX-ray14 label set, as the canonical manifest names its columns."""

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
