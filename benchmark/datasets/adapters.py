"""The dataset adapters as data: name, loader, the options each accepts, its label columns.

    dataset = load_dataset("mimic", root, LoadOptions(uncertain="ignore", mimic_iv=mimic_iv))

An option an adapter does not use is refused when it is given (e.g. `--uncertain` for NIH, which has no
uncertain labels, or `--val-fraction` for MIMIC, whose official split has a validation set), rather than
silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from benchmark.core.errors import BenchError
from benchmark.core.schema import ALL_LABEL_COLUMNS, CHEXPERT_LABELS, LABEL_COLUMNS
from benchmark.datasets.common import LoadOptions
from benchmark.datasets.labels import prompt_classes

COMMON_OPTIONS = frozenset({"val_fraction", "seed", "allow_missing_images"})
CXR_OPTIONS = COMMON_OPTIONS | {"metadata_only", "uncertain", "views", "race_map"}
OPTION_FLAGS = {"val_fraction": "--val-fraction", "seed": "--seed/--split-seed", "allow_missing_images": "--allow-missing-images",
                "metadata_only": "--metadata-only", "uncertain": "--uncertain", "views": "--views", "labeler": "--labeler",
                "mimic_iv": "--mimic-iv", "race_map": "--race-map"}


@dataclass(frozen=True)
class Adapter:
    """One dataset layout: how to read it and what it holds."""

    name: str
    description: str
    load: Callable[[Path, LoadOptions], object]
    options: frozenset[str]
    labels: tuple[str, ...]
    """The manifest label columns the dataset fills, in canonical order."""

    @property
    def prompt_classes(self) -> tuple[str, ...]:
        """The classes its embedding stores embed prompts for (its labels, then the `common` classes it lacks)."""
        return prompt_classes(self.labels)


def _nih(root: Path, options: LoadOptions):
    from benchmark.datasets.nih import load_nih

    return load_nih(root, val_fraction=options.val_fraction, seed=options.seed,
                    allow_missing_images=options.allow_missing_images)


def _chexpert(root: Path, options: LoadOptions):
    from benchmark.datasets.chexpert import load_chexpert

    return load_chexpert(root, options)


def _mimic(root: Path, options: LoadOptions):
    from benchmark.datasets.mimic import load_mimic

    return load_mimic(root, options)


CXR_LABELS = tuple(name for name in ALL_LABEL_COLUMNS if name in CHEXPERT_LABELS)
ADAPTERS: dict[str, Adapter] = {
    "nih": Adapter("nih", "NIH ChestX-ray14 (Data_Entry_2017*.csv, images/, official split lists)", _nih,
                   COMMON_OPTIONS, LABEL_COLUMNS),
    "chexpert": Adapter("chexpert", "CheXpert v1.0 or v1.0-small (train.csv, valid.csv, test set labels, CHEXPERT DEMO.xlsx)",
                        _chexpert, CXR_OPTIONS, CXR_LABELS),
    "mimic": Adapter("mimic", "MIMIC-CXR-JPG 2.0.0 (metadata, split, chexpert/negbio label files, files/) + MIMIC-IV "
                     "demographics", _mimic, (CXR_OPTIONS - {"val_fraction", "seed"}) | {"labeler", "mimic_iv"}, CXR_LABELS),
}


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise BenchError(f"unknown dataset {name!r}; known: {', '.join(ADAPTERS)}.")
    return ADAPTERS[name]


def load_dataset(name: str, root: str | os.PathLike, options: LoadOptions = LoadOptions()):
    """Read a dataset folder with the adapter `name`; options it does not use must keep their defaults."""
    adapter = get_adapter(name)
    defaults = LoadOptions()
    refused = [f.name for f in dataclasses.fields(LoadOptions)
               if f.name not in adapter.options and getattr(options, f.name) != getattr(defaults, f.name)]
    if refused:
        flags = ", ".join(OPTION_FLAGS.get(name, name) for name in refused)
        raise BenchError(f"{flags} do(es) not apply to dataset {name!r}; it takes "
                         f"{', '.join(OPTION_FLAGS.get(o, o) for o in sorted(adapter.options))}.")
    return adapter.load(Path(root), options)
