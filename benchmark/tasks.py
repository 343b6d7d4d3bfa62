"""Tasks: which images, which classes, which labels, which split — built from a canonical manifest.

- `nih14`: multi-label, the 14 NIH findings (independent sigmoids); the manifest's splits.
- `nofinding`: binary "No Finding" vs any finding, as a multi-label task with one class (for underdiagnosis
  analysis: the false-positive rate of "No Finding" in a group is its underdiagnosis rate); the manifest's splits.
  Works on every dataset (each fills its own No_Finding column).
- `chexpert14` / `mimic14`: multi-label, the 14 CheXpert observations (CheXpert and MIMIC-CXR share them; the
  two names are the same task, named after the dataset it is usually run on); the manifest's splits.
- `common`: multi-label, the classes NIH, CheXpert and MIMIC share (`benchmark/datasets/common_labels.json`:
  Atelectasis, Cardiomegaly, Consolidation, Edema, Effusion (= CheXpert's Pleural Effusion), Pneumonia,
  Pneumothorax, No Finding), so that a head trained on one dataset is tested on another.

Masked labels (null: uncertain under `--uncertain ignore`) in chexpert14, mimic14 and common: every row keeps
its known labels. The heads' losses skip the masked ones; a val or test row stays in the prediction file with
null in the masked class's y_ column, and the fairness engine leaves that entry out of that class's figures
only. Counted per split and class in `task.report["masked"]`, images with any masked label per split in
`task.report["masked_rows"]`. Rows with no known label at all are dropped. nih14 keeps NIH's rule: a row with
any unknown label is dropped.
- `nih6x200`: the seed study's protocol (Sun et al., ISBI 2025): single-label images of Cardiomegaly, Effusion,
  Atelectasis, Pneumothorax, Edema and Consolidation, `per_class` images per class (default 200), each class
  balanced over the four sex x age-group cells (age < 60 / >= 60), re-split patient-disjointly inside the subset
  (`split_fractions`, default 0.7/0.1/0.2). The study never published its split files, so its exact subset cannot be
  rebuilt: ours is drawn by seed and both the count and the proportions are parameters.

A task is deterministic for (manifest, seed, params). Rows a task cannot use are dropped and counted in
`task.report`, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.schema import (
    AGE_GROUPS, AGE_THRESHOLD, ATTRIBUTE_COLUMNS, CHEXPERT_LABELS, FINDINGS, MASKED, NO_FINDING,
    SEED_STUDY_CLASSES, SPLITS, label_column,
)
from benchmark.datasets.labels import common_map
from benchmark.datasets.splits import check_fractions, stratified_patient_split

CELLS: tuple[tuple[str, str], ...] = tuple((sex, group) for sex in ("F", "M") for group in AGE_GROUPS)
"""The seed study's sex x age-group cells: (F, <60), (F, >=60), (M, <60), (M, >=60)."""
ROW_COLUMNS: tuple[str, ...] = ("image_id", "patient_id", "sex", "age", "split")


@dataclass(frozen=True)
class Task:
    """Rows and labels of one task. `frame`: image_id, patient_id, sex, age, split, race and insurance (where the
    dataset records them), then y_<class> (Int8; null = masked)."""

    name: str
    kind: str
    classes: tuple[str, ...]
    params: dict
    frame: pl.DataFrame
    report: dict = field(default_factory=dict)

    def split_indices(self, split: str) -> np.ndarray:
        """Positions into `frame` of the rows of a split ("train", "val" or "test")."""
        if split not in SPLITS:
            raise BenchError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
        return np.flatnonzero((self.frame["split"] == split).to_numpy())

    def labels(self, split: str | None = None) -> np.ndarray:
        """Labels of a split (all rows when None): class indices [n] for "single", 0/1 [n, C] for "multi"
        (`MASKED` (-1) where a label is masked)."""
        rows = self.frame if split is None else self.frame[self.split_indices(split)]
        matrix = rows.select([pl.col(label_column(name)).fill_null(MASKED) for name in self.classes]).to_numpy().astype(np.int64)
        return matrix.argmax(axis=1) if self.kind == "single" else matrix

    @property
    def label_columns(self) -> list[str]:
        return [label_column(name) for name in self.classes]


@dataclass(frozen=True)
class TaskParam:
    name: str
    parse: Callable[[str], object]
    default: object
    help: str


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in str(text).split(","))
    except ValueError as error:
        raise BenchError(f"split_fractions {text!r} must be three numbers such as 0.7,0.1,0.2.") from error
    if len(values) != 3:
        raise BenchError(f"split_fractions {text!r} must be three numbers (train,val,test) such as 0.7,0.1,0.2.")
    return check_fractions(values, what="split_fractions")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError) as error:
        raise BenchError(f"per_class {text!r} must be a whole number such as 200.") from error
    if value < 4:
        raise BenchError(f"per_class {value} must be at least 4 (one image per sex x age-group cell).")
    return value


def _balance(text: str) -> str:
    if text not in ("cells", "margins"):
        raise BenchError(f"balance {text!r} must be 'cells' (equal sex x age-group cells) or 'margins' (equal sex and age margins).")
    return text


def row_columns(manifest: pl.DataFrame) -> list[str]:
    """The task frame's row columns: ROW_COLUMNS, then race and insurance where the manifest has any value."""
    extra = [name for name in ATTRIBUTE_COLUMNS if name in manifest.columns and manifest[name].null_count() < manifest.height]
    return [*ROW_COLUMNS, *extra]


def _multi_label(name: str, classes: tuple[str, ...], manifest: pl.DataFrame, seed: int, params: dict, *,
                 values: dict | None = None, keep_masked: bool = False) -> Task:
    """A multi-label task; `values` maps a class to its label expression (default: the manifest column)."""
    labels = {c: (values or {}).get(c, pl.col(c)).cast(pl.Int8).alias(label_column(c)) for c in classes}
    frame = manifest.select(*row_columns(manifest), *labels.values())
    columns = [label_column(c) for c in classes]
    absent = [c for c in classes if frame[label_column(c)].null_count() == frame.height]
    if absent:
        raise BenchError(f"task {name}: this dataset has no {', '.join(absent)} labels (all unknown); run {name} on a "
                         "dataset that labels them (nih14: NIH; chexpert14 / mimic14: CheXpert, MIMIC-CXR; common, nofinding: all).")
    known = pl.sum_horizontal([pl.col(c).is_not_null() for c in columns])
    unlabelled = frame.filter(known < len(columns) if not keep_masked else known == 0).height
    frame = frame.filter(known == len(columns) if not keep_masked else known > 0)
    masked = frame.filter(known < len(columns))
    report = {"rows": 0, "dropped_unlabelled": unlabelled, "per_split": {}}
    if keep_masked:
        report["masked"] = {split: {c: int(masked.filter(pl.col("split") == split)[label_column(c)].null_count()) for c in classes}
                            for split in SPLITS}
        report["masked_rows"] = {split: masked.filter(pl.col("split") == split).height for split in SPLITS}
    report.update(rows=frame.height, per_split=_per_split(frame, classes))
    return Task(name=name, kind="multi", classes=classes, params={"seed": seed, **params}, frame=frame, report=report)


def _nih14(manifest: pl.DataFrame, seed: int, params: dict) -> Task:
    return _multi_label("nih14", FINDINGS, manifest, seed, params)


def _nofinding(manifest: pl.DataFrame, seed: int, params: dict) -> Task:
    return _multi_label("nofinding", (NO_FINDING,), manifest, seed, params)


def _cxr14(name: str):
    def build(manifest: pl.DataFrame, seed: int, params: dict) -> Task:
        return _multi_label(name, CHEXPERT_LABELS, manifest, seed, params, keep_masked=True)

    return build


def _common(manifest: pl.DataFrame, seed: int, params: dict) -> Task:
    """The shared classes, each the one column of its dataset that holds values (common_labels.json)."""
    values = {}
    for name, sources in common_map().items():
        columns = sorted(set(sources.values()))
        both = manifest.filter(pl.sum_horizontal([pl.col(c).is_not_null() for c in columns]) > 1)
        if both.height:
            raise BenchError(f"task common: class {name} has values in several columns ({', '.join(columns)}) for image "
                             f"{both['image_id'][0]!r}; a manifest fills one of them.")
        values[name] = pl.coalesce([pl.col(c) for c in columns])
    return _multi_label("common", tuple(values), manifest, seed, params, values=values, keep_masked=True)


def age_group(age: pl.Expr) -> pl.Expr:
    """"<60" / ">=60" (null when the age is unknown), the seed study's age groups."""
    young, old = AGE_GROUPS
    return pl.when(age.is_null()).then(None).when(age < AGE_THRESHOLD).then(pl.lit(young)).otherwise(pl.lit(old))


def _cell_quota(per_class: int) -> list[int]:
    """Images per cell: per_class split evenly over the 4 cells, the remainder to the first cells in CELLS order."""
    base, extra = divmod(per_class, len(CELLS))
    return [base + (1 if i < extra else 0) for i in range(len(CELLS))]


def _class_quota(label: str, per_class: int, balance: str, counts: dict, feasible: int) -> list[int]:
    """Images to draw from each cell of CELLS for one class, or BenchError when the cells cannot supply them.

    "cells": per_class spread evenly over the 4 cells. "margins": F and M get per_class/2 each and so do
    <60 and >=60; within that, the cells are as even as the available images allow (with F/<60 = M/>=60 = t and
    F/>=60 = M/<60 = per_class/2 - t, the only tables with balanced margins).
    """
    have = [counts.get((label, sex, group), 0) for sex, group in CELLS]
    if balance == "cells":
        quota = _cell_quota(per_class)
        short = [(cell, h, q) for cell, h, q in zip(CELLS, have, quota) if h < q]
        if short:
            listing = "; ".join(f"{sex}/age{group}: {h} of {q}" for (sex, group), h, q in short)
            raise BenchError(
                f"nih6x200: too few single-label {label} images for per_class={per_class} ({max(quota)} per sex x "
                f"age-group cell): {listing}. Use a smaller --per-class (at most {feasible} for all six classes here), "
                "or --task-param balance=margins (sex and age margins balanced, cells as even as possible), or a larger dataset."
            )
        return quota
    half = per_class // 2
    low, high = half - min(have[1], have[2]), min(have[0], have[3])
    if per_class % 2 or low > high or low > half or high < 0:
        raise BenchError(
            f"nih6x200: cannot balance single-label {label} images over sex and age for per_class={per_class} with "
            f"balance=margins (available F/<60 {have[0]}, F/>=60 {have[1]}, M/<60 {have[2]}, M/>=60 {have[3]}; "
            "per_class must be even). Use a smaller even --per-class or a larger dataset."
        )
    t = min(max(half // 2, low), high)
    return [t, half - t, half - t, t]


def _nih6x200(manifest: pl.DataFrame, seed: int, params: dict) -> Task:
    per_class = params["per_class"]
    fractions = params["split_fractions"]
    classes = SEED_STUDY_CLASSES
    positives = pl.sum_horizontal([pl.col(name).fill_null(0) for name in FINDINGS])
    labelled = pl.all_horizontal([pl.col(name).is_not_null() for name in FINDINGS])
    single = manifest.with_row_index("position").filter(
        labelled & (positives == 1) & (pl.col(NO_FINDING).fill_null(0) == 0)
    )
    single = single.with_columns(
        label=pl.coalesce([pl.when(pl.col(name) == 1).then(pl.lit(name)) for name in FINDINGS]),
        age_group=age_group(pl.col("age")),
    ).filter(pl.col("label").is_in(list(classes)))
    unknown_group = single.filter(pl.col("sex").is_null() | pl.col("age_group").is_null()).height
    single = single.filter(pl.col("sex").is_not_null() & pl.col("age_group").is_not_null())

    available = single.group_by("label", "sex", "age_group").len()
    counts = {(row["label"], row["sex"], row["age_group"]): row["len"] for row in available.iter_rows(named=True)}
    feasible = len(CELLS) * min(counts.get((label, sex, group), 0) for label in classes for sex, group in CELLS)
    quotas = {label: _class_quota(label, per_class, params["balance"], counts, feasible) for label in classes}
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for label in classes:
        for (sex, group), need in zip(CELLS, quotas[label]):
            cell = single.filter((pl.col("label") == label) & (pl.col("sex") == sex) & (pl.col("age_group") == group))
            positions = np.sort(cell["position"].to_numpy())
            chosen.append(rng.choice(positions, size=need, replace=False))
    picked = single.filter(pl.col("position").is_in(np.concatenate(chosen).tolist())).sort("position")
    assignment = stratified_patient_split(
        picked["patient_id"].to_numpy(), picked["label"].to_numpy(), fractions, seed
    )
    picked = picked.with_columns(split=pl.Series(np.array(SPLITS)[assignment]))
    frame = picked.select(
        *ROW_COLUMNS, *[(pl.col("label") == name).cast(pl.Int8).alias(label_column(name)) for name in classes]
    )
    report = {
        "rows": frame.height,
        "single_label_candidates": single.height,
        "dropped_unknown_sex_or_age": unknown_group,
        "balance": params["balance"],
        "per_cell": {label: dict(zip([f"{s}/{g}" for s, g in CELLS], quotas[label])) for label in classes},
        "per_split": _per_split(frame, classes),
        "note": "the seed study did not publish its split files; this subset and split are drawn by seed",
    }
    return Task(name="nih6x200", kind="single", classes=classes, params={"seed": seed, **params}, frame=frame, report=report)


def _per_split(frame: pl.DataFrame, classes: tuple[str, ...]) -> dict:
    out = {}
    for split in SPLITS:
        rows = frame.filter(pl.col("split") == split)
        out[split] = {"rows": rows.height, "patients": rows["patient_id"].n_unique(),
                      "positives": {name: int(rows[label_column(name)].sum() or 0) for name in classes}}
    return out


@dataclass(frozen=True)
class TaskDef:
    name: str
    description: str
    build: Callable[[pl.DataFrame, int, dict], Task]
    params: tuple[TaskParam, ...] = ()
    releases: tuple[str, ...] = ("nih", "chexpert", "mimic")
    """The releases whose labels the task reads (a synthetic dataset counts as the release it imitates)."""


TASKS: dict[str, TaskDef] = {
    "nih14": TaskDef("nih14", "multi-label, the 14 NIH ChestX-ray14 findings", _nih14, releases=("nih",)),
    "nofinding": TaskDef("nofinding", "binary: No Finding vs any finding (underdiagnosis analysis); every dataset", _nofinding),
    "nih6x200": TaskDef(
        "nih6x200",
        "seed study: 6 single-label classes, per_class images each, balanced over sex x age<60/>=60, patient-disjoint re-split",
        _nih6x200,
        (
            TaskParam("per_class", _positive_int, 200, "images per class, spread evenly over the 4 sex x age-group cells"),
            TaskParam("split_fractions", _fractions, (0.7, 0.1, 0.2), "train,val,test shares of the subset (by patient)"),
            TaskParam("balance", _balance, "cells", "cells: equal sex x age-group cells; margins: equal sex and age margins, cells as even as possible"),
        ),
        releases=("nih",),
    ),
    "chexpert14": TaskDef("chexpert14", "multi-label, the 14 CheXpert observations (CheXpert, MIMIC-CXR)", _cxr14("chexpert14"),
                          releases=("chexpert", "mimic")),
    "mimic14": TaskDef("mimic14", "multi-label, the 14 CheXpert observations as MIMIC-CXR labels them (= chexpert14)", _cxr14("mimic14"),
                       releases=("chexpert", "mimic")),
    "common": TaskDef("common", "multi-label, the classes NIH, CheXpert and MIMIC share (for out-of-distribution tests)", _common),
}


def _task_def(name: str) -> TaskDef:
    if name not in TASKS:
        raise BenchError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}.")
    return TASKS[name]


def parse_task_params(name: str, items: list[str] | None) -> dict:
    """Turn CLI `key=value` strings into typed task parameters (e.g. ["per_class=20"] -> {"per_class": 20}).

    Both `per_class` and `per-class` spellings are accepted; unknown keys raise BenchError listing the known ones.
    """
    definition = _task_def(name)
    known = {param.name: param for param in definition.params}
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            listing = ", ".join(f"{p.name} (default {p.default})" for p in definition.params) or "none"
            problem = f"{name} has no parameter {key!r}" if sep else "it is not of the form key=value"
            raise BenchError(f"task parameter {item!r}: {problem}; {name} takes: {listing}.")
        out[key] = known[key].parse(value.strip())
    return out


def build_task(name: str, manifest: pl.DataFrame, *, seed: int = 0, **params) -> Task:
    """Build task `name` from a canonical manifest; `params` override the task's defaults (see `TASKS`)."""
    definition = _task_def(name)
    known = {param.name: param for param in definition.params}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise BenchError(f"task {name} has no parameter(s) {unknown}; it takes: {', '.join(known) or 'none'}.")
    resolved = {}
    for key, param in known.items():
        value = params.get(key, param.default)
        resolved[key] = param.parse(",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value))
    return definition.build(manifest, int(seed), resolved)
