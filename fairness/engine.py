"""`evaluate`: one run's test predictions -> figures with patient-clustered CIs, permutation p-values, groups.

The engine works on numpy arrays and knows nothing of files. Use it like fairlearn's MetricFrame, but
multi-label, with the seed study's figures and honest uncertainty:

    report = evaluate(y_test=y, p_test=p, kind="multi", classes=classes, patient_ids=pid, sex=sex, age=age,
                      y_val=y_val, p_val=p_val, n_boot=1000, seed=0)
    report.figures["f1_gap_sex"].value, report.figures["f1_gap_sex"].ci, report.figures["f1_gap_sex"].p_adj

Point values are computed from the test set as it is (weights 1), in float64. Replicates use float32
sums (exact for counts; relative error ~1e-7 elsewhere), in chunks so memory stays bounded.
"""

from __future__ import annotations

import hashlib

import numpy as np

from benchmark.core.errors import BenchError
from fairness.curves import average_precision
from fairness.figures import GroupIndex, compute_figures, figure_groups, is_gap, permuted_attribute
from fairness.groups import ERR_UNKNOWN_ATTRIBUTE, GroupSet, atoms_from_codes, build_groups, parse_attribute_list
from fairness.metrics import PER_CLASS, GroupMetrics, group_metrics, nanmean
from fairness.multitest import adjust_p_values
from fairness.report import FairnessReport, Figure
from fairness.resampling import (
    bootstrap_counts,
    first_index,
    percentile_intervals,
    permutation_p_value,
    permuted_patient_codes,
)
from fairness.stats import Units, fixed_atom_stats, image_features, rank_bins, variable_atom_stats
from fairness.thresholds import Thresholds, choose_thresholds, decide

ERR_SHAPE = "y_test has shape {y}, p_test has shape {p}; both must be [n images, {c} classes]"
ERR_LABELS = "y_test must hold only 0 and 1; found {value!r} at row {row}, class {cls!r}"
ERR_PROBABILITIES = "p_test must hold probabilities in [0, 1]; found {value!r} at row {row}, class {cls!r}"
ERR_KIND = "kind must be 'single' or 'multi', got {kind!r}"
ERR_SINGLE = "kind='single' needs exactly one positive label per row; row {row} has {count}"
ERR_EMPTY = "no test images to evaluate; the predictions need rows with split 'test'"
ERR_PATIENTS = "patient_ids has {got} values for {n} images; give one patient id per image"

DEFAULT_ATTRIBUTES = ("sex", "age", "sex_age")
GROUP_METRICS = ("auc", "average_precision", "accuracy", "f1", "precision", "tpr", "fpr", "tnr", "fnr",
                 "selection_rate", "ece")
CHUNK_ELEMENTS = 25_000_000


class ResamplingPlan:
    """Bootstrap draws shared by the runs evaluated on the same test set (a leaderboard's runs).

    The draws depend only on the patients, their strata, the seed and the number of replicates, so runs
    on the same test images reuse them: faster, and their replicates are paired.
    """

    def __init__(self):
        self._counts: dict[str, np.ndarray] = {}

    def counts(self, key: str, strata: np.ndarray, *, n_boot: int, seed: int) -> np.ndarray:
        if key not in self._counts:
            self._counts[key] = bootstrap_counts(strata, n_boot=n_boot, rng=np.random.default_rng([seed, 0]))
        return self._counts[key]


def _check_inputs(y, p, kind, classes):
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


def _permuted_positions(groups: GroupSet, attribute: str) -> list[int]:
    """Base-attribute positions shuffled together when testing `attribute`."""
    parts = attribute.split("_") if attribute not in groups.base_names else [attribute]
    if "age" in parts and "_age_seed" in groups.base_names:
        parts = parts + ["_age_seed"]
    return [groups.base_names.index(part) for part in parts if part in groups.base_names]


class _Run:
    """The prepared arrays of one evaluation (shared by point, bootstrap and permutation passes)."""

    def __init__(self, *, y, p, decisions, groups: GroupSet, patient_index, n_patients, kind, classes, attributes,
                 seed_exact):
        self.y, self.p, self.groups, self.kind = y, p, groups, kind
        self.classes, self.attributes, self.seed_exact = classes, attributes, seed_exact
        self.index = GroupIndex(groups)
        self.masks = np.array([mask for _, _, mask in self.index.table])
        self.units = Units.build(patient_index, groups.atom_of_image, image_features(y, p, decisions))
        self.patient_index, self.n_patients = patient_index, n_patients
        self.first_image_of_unit = first_index(self.units.unit_of_image, self.units.atom.size)
        self.first_image_of_patient = first_index(patient_index, n_patients)
        self._rank_bins = (None, None)

    def rank_bins(self, auc_bins):
        if auc_bins is None:
            return None
        if self._rank_bins[0] != auc_bins:  # computed once per run, shared by every pass
            self._rank_bins = (auc_bins, [rank_bins(self.p[:, c], auc_bins) for c in range(self.p.shape[1])])
        return self._rank_bins[1]

    def chunk(self) -> int:
        return max(1, CHUNK_ELEMENTS // max(1, self.y.shape[0]))

    def figures_of(self, metrics: GroupMetrics):
        return compute_figures(metrics, self.index, classes=self.classes, attributes=self.attributes,
                               seed_exact=self.seed_exact)

    def weighted(self, unit_weights, dtype, auc_bins) -> GroupMetrics:
        stats = fixed_atom_stats(self.units, unit_weights, scores=self.p, y=self.y,
                                 atom_of_image=self.groups.atom_of_image, dtype=dtype, auc_bins=auc_bins,
                                 bins_by_class=self.rank_bins(auc_bins))
        return group_metrics(stats, self.masks, kind=self.kind)

    def permuted(self, unit_atoms, auc_bins) -> GroupMetrics:
        stats = variable_atom_stats(self.units, unit_atoms, scores=self.p, y=self.y, dtype=np.float32,
                                    auc_bins=auc_bins, bins_by_class=self.rank_bins(auc_bins))
        return group_metrics(stats, self.masks, kind=self.kind)


def _concat(parts: list[dict]) -> dict:
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}


def evaluate(
    *,
    y_test,
    p_test,
    kind: str,
    classes,
    patient_ids=None,
    sex=None,
    age=None,
    columns: dict | None = None,
    y_val=None,
    p_val=None,
    thresholds: Thresholds | None = None,
    threshold_rule: str = "f1",
    fixed_threshold: float = 0.5,
    attributes=DEFAULT_ATTRIBUTES,
    age_bins="binary",
    n_boot: int = 1000,
    n_perm: int = 1000,
    confidence: float = 0.95,
    correction: str = "holm",
    min_group_size: int = 30,
    seed: int = 0,
    seed_exact: bool = False,
    auc_bins: int | None = 512,
    plan: ResamplingPlan | None = None,
    tested_figures=None,
) -> FairnessReport:
    """Evaluate one run's test predictions (see the module docstring and `fairness.figures`).

    `auc_bins`: replicates (bootstrap and permutation) compute AUC with scores rounded to this many rank
    bins (pairs inside a bin count one half), which makes them several times faster; each bootstrap
    replicate's group AUC is then shifted by the point difference exact - binned, and the permutation test
    compares binned with binned. Point values are always exact. None: exact replicates too (slow).
    `plan`: a `ResamplingPlan` shared by runs on the same test set, to reuse the bootstrap draws.
    `tested_figures`: names of the gap figures to test by permutation (None: every gap figure).
    `columns`: other group attributes (e.g. race, insurance), name -> one value per image (None: unknown, never a
    group); a column given as None has no values at all, and its attributes are left out like missing sex / age.
    """
    classes = tuple(classes)
    y, p = _check_inputs(y_test, p_test, kind, classes)
    n = y.shape[0]
    if thresholds is None:
        thresholds = choose_thresholds(y_val=y_val, p_val=p_val, kind=kind, rule=threshold_rule, fixed=fixed_threshold)
    if thresholds.kind == "multi" and not thresholds.values:
        thresholds = Thresholds(kind="multi", rule=thresholds.rule, values=(float(fixed_threshold),) * len(classes))
    decisions = decide(p, thresholds)

    attributes = list(parse_attribute_list(attributes))
    if "sex" in attributes and "age" in attributes and "sex_age" not in attributes and sex is not None and age is not None:
        attributes.append("sex_age")  # the seed study's F1 gaps are means over sex x age cells
    available = {"sex": sex is not None, "age": age is not None}
    available.update({name: values is not None for name, values in (columns or {}).items()})  # None: no values
    unavailable = []
    for attribute in list(attributes):
        parts = [attribute] if attribute in available else attribute.split("_")
        unknown = [part for part in parts if part not in available]
        if unknown:
            raise BenchError(ERR_UNKNOWN_ATTRIBUTE.format(name=attribute, known=", ".join(available)))
        if not all(available[part] for part in parts):
            unavailable.append(attribute)  # no values given (e.g. a file without a sex column): reported
    attributes = [a for a in attributes if a not in unavailable]
    if attributes:
        groups = build_groups(n=n, sex=sex, age=age, columns={k: v for k, v in (columns or {}).items() if v is not None},
                              attributes=attributes, age_bins=age_bins,
                              seed_exact=seed_exact)
    else:
        groups = _overall_only(n)

    if patient_ids is None:
        patient_index, n_patients = np.arange(n), n
        patient_note = "none given: each image is its own patient"
    else:
        patient_ids = np.asarray([str(x) for x in patient_ids])
        if patient_ids.shape[0] != n:
            raise BenchError(ERR_PATIENTS.format(got=patient_ids.shape[0], n=n))
        _, patient_index = np.unique(patient_ids, return_inverse=True)
        patient_index = patient_index.reshape(-1)
        n_patients = int(patient_index.max()) + 1
        patient_note = "given"

    run = _Run(y=y, p=p, decisions=decisions, groups=groups, patient_index=patient_index, n_patients=n_patients,
               kind=kind, classes=classes, attributes=attributes, seed_exact=seed_exact)

    ones = np.ones((run.units.atom.size, 1))
    point_metrics = run.weighted(ones, np.float64, None)
    point_figures, point_by_class = run.figures_of(point_metrics)
    auc_shift = 0.0
    binned_figures = point_figures
    if auc_bins is not None:
        binned_metrics = run.weighted(ones, np.float64, auc_bins)
        auc_shift = np.nan_to_num(point_metrics.per_class["auc"] - binned_metrics.per_class["auc"])
        binned_figures, _ = run.figures_of(binned_metrics)

    strata = groups.atom_of_image[run.first_image_of_patient]
    key = hashlib.sha256()
    key.update(patient_index.astype(np.int64).tobytes())
    key.update(strata.astype(np.int64).tobytes())
    key.update(f"{seed}:{n_boot}".encode())
    resampling_key = key.hexdigest()
    boot_figures, boot_by_class, boot_groups = [], [], []
    if n_boot > 0:
        counts = (plan or ResamplingPlan()).counts(resampling_key, strata, n_boot=n_boot, seed=seed)
        for start in range(0, n_boot, run.chunk()):
            unit_weights = counts[run.units.patient, start:start + run.chunk()]
            metrics = run.weighted(unit_weights, np.float32, auc_bins)
            metrics.per_class["auc"] += auc_shift
            figs, per_class = run.figures_of(metrics)
            boot_figures.append(figs)
            boot_by_class.append(per_class)
            boot_groups.append(_group_summary(metrics))
    boot_figures = _concat(boot_figures) if boot_figures else {}
    boot_by_class = _concat(boot_by_class) if boot_by_class else {}
    boot_groups = _concat(boot_groups) if boot_groups else {}

    permutation_rng = np.random.default_rng([seed, 1])
    p_values = (_permutation_tests(run, binned_figures, n_perm=n_perm, rng=permutation_rng, auc_bins=auc_bins,
                                   tested=tested_figures) if n_perm > 0 else {})

    figures = {}
    tested = [name for name in point_figures if name in p_values]
    adjusted = dict(zip(tested, adjust_p_values([p_values[name] for name in tested], method=correction)))
    counts_point = point_metrics.count[0]
    intervals = _intervals(boot_figures, list(point_figures), confidence)
    for name, values in point_figures.items():
        figures[name] = Figure(
            value=float(values[0]),
            ci=intervals[name],
            p_value=p_values.get(name) if is_gap(name) else None,
            p_adj=adjusted.get(name),
            flag=_flag(name, float(values[0]), run.index, counts_point, min_group_size, n_classes=len(classes)),
            replicates=boot_figures.get(name),
        )

    by_class = {}
    for name, values in point_by_class.items():
        columns = {cls: boot_by_class[name][:, c] for c, cls in enumerate(classes)} if boot_by_class else {}
        intervals = _intervals(columns, classes, confidence)
        by_class[name] = {cls: Figure(value=float(values[0, c]), ci=intervals[cls], replicates=columns.get(cls))
                          for c, cls in enumerate(classes)}

    group_rows = _group_rows(run, point_metrics, boot_groups, confidence=confidence, min_group_size=min_group_size)
    options = {
        "attributes": attributes,
        "attributes_without_values": unavailable,
        "age_bins": age_bins if isinstance(age_bins, str) else list(age_bins),
        "n_boot": n_boot,
        "n_perm": n_perm,
        "confidence": confidence,
        "correction": correction,
        "min_group_size": min_group_size,
        "seed": seed,
        "seed_exact": seed_exact,
        "auc_bins": auc_bins,
        "patients": patient_note,
        "bootstrap": "patient-clustered, stratified by the first image's group cell, percentile CI",
    }
    return FairnessReport(figures=figures, by_class=by_class, groups=group_rows, thresholds=thresholds,
                          classes=classes, kind=kind, n_test=n, n_patients=n_patients, options=options,
                          resampling_key=resampling_key)


def _intervals(replicates: dict, names, confidence: float) -> dict:
    """Percentile CI of each name's replicates (NaN, NaN where there are none), computed in one call."""
    present = [name for name in names if name in replicates]
    out = {name: (float("nan"), float("nan")) for name in names}
    if present:
        bounds = percentile_intervals(np.stack([replicates[name] for name in present]), confidence=confidence)
        out.update({name: (float(low), float(high)) for name, (low, high) in zip(present, bounds)})
    return out


def _overall_only(n: int) -> GroupSet:
    return GroupSet(atom_of_image=np.zeros(n, dtype=np.int64), atom_codes=np.zeros((1, 0), dtype=np.int64),
                    base_names=(), base_levels=(), attributes=(), image_codes=np.zeros((n, 0), dtype=np.int64),
                    radix=np.zeros(0, dtype=np.int64))


def _permutation_tests(run: _Run, point_figures: dict, *, n_perm: int, rng, auc_bins, tested=None) -> dict:
    """Raw permutation p-values of the gap figures (or those in `tested`), one permutation set per shuffled
    attribute."""
    by_attribute: dict[str, list[str]] = {}
    for name in point_figures:
        if tested is not None and name not in tested:
            continue
        attr = permuted_attribute(name)
        if is_gap(name) and attr is not None and np.isfinite(point_figures[name][0]):
            by_attribute.setdefault(attr, []).append(name)
    groups = run.groups
    unit_codes = groups.image_codes[run.first_image_of_unit]
    patient_codes = groups.image_codes[run.first_image_of_patient]
    p_values = {}
    for attr, names in by_attribute.items():
        positions = _permuted_positions(groups, attr)
        if not positions:
            continue
        collected: dict[str, list[np.ndarray]] = {name: [] for name in names}
        step = max(1, run.chunk() // 4)  # a permutation chunk holds one 0/1 membership matrix per atom
        for start in range(0, n_perm, step):
            size = min(step, n_perm - start)
            shuffled = permuted_patient_codes(patient_codes[:, positions], n_perm=size, rng=rng)
            codes = np.broadcast_to(unit_codes, (size,) + unit_codes.shape).copy()
            codes[:, :, positions] = shuffled[:, run.units.patient, :]
            unit_atoms = atoms_from_codes(codes, groups.radix)
            figs, _ = run.figures_of(run.permuted(unit_atoms, auc_bins))
            for name in names:
                collected[name].append(figs[name])
        for name in names:
            p_values[name] = permutation_p_value(float(point_figures[name][0]), np.concatenate(collected[name]))
    return p_values


def _flag(name: str, value: float, index: GroupIndex, counts: np.ndarray, min_group_size: int,
          n_classes: int | None = None) -> str:
    if not np.isfinite(value) and name == "var_f1" and n_classes is not None and n_classes < 2:
        return "undefined (a variance over classes needs two or more classes)"
    if not np.isfinite(value):
        return "undefined (a group lacks images, positives or negatives)"
    groups = figure_groups(name, index)
    small = [f"{index.table[g][1]} (n={int(counts[g])})" for g in groups if counts[g] < min_group_size]
    if small:
        return f"small group(s) below {min_group_size}: " + ", ".join(small)
    return ""


def _group_summary(metrics: GroupMetrics) -> dict:
    summary = {"count": metrics.count, "accuracy": metrics.accuracy}
    for name in GROUP_METRICS:
        if name in PER_CLASS and name != "accuracy":
            summary[name] = metrics.macro(name)
    return summary


def _average_precision(y, p, masks) -> np.ndarray:
    """Macro average precision [G] of each group (image masks [G, n]); each class's scores sorted once."""
    values = np.full((masks.shape[0], y.shape[1]), np.nan)
    for c in range(y.shape[1]):
        order = np.argsort(-p[:, c], kind="mergesort")
        for g in range(masks.shape[0]):
            chosen = order[masks[g, order]]
            if y[chosen, c].sum() > 0:
                values[g, c] = average_precision(y[chosen, c], p[chosen, c], presorted=True)
    return nanmean(values, axis=1)


def _group_rows(run: _Run, point: GroupMetrics, boot: dict, *, confidence: float, min_group_size: int) -> list:
    point_summary = _group_summary(point)
    rows = []
    image_masks = run.masks[:, run.groups.atom_of_image]
    precision = _average_precision(run.y, run.p, image_masks)
    names = [name for name in GROUP_METRICS if name != "average_precision"]
    keys = [(g, name) for g in range(len(run.index.table)) for name in names]
    columns = {key: boot[key[1]][:, key[0]] for key in keys} if boot else {}
    intervals = _intervals(columns, keys, confidence)
    for g, (attr, level, _) in enumerate(run.index.table):
        count = int(point.count[0, g])
        metrics = {}
        for name in GROUP_METRICS:
            if name == "average_precision":
                metrics[name] = Figure(value=float(precision[g]), ci=(np.nan, np.nan))
            else:
                metrics[name] = Figure(value=float(point_summary[name][0, g]), ci=intervals[(g, name)],
                                       replicates=columns.get((g, name)))
        rows.append({
            "attribute": attr,
            "level": level,
            "count": count,
            "positives": {cls: int(point.positives[0, g, c]) for c, cls in enumerate(run.classes)},
            "metrics": metrics,
            "flag": f"small group (n={count} < {min_group_size})" if count < min_group_size else "",
        })
    return rows
