"""The tables of a report built from the passes: figures with CIs and flags, per-class figures, per-group rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairness.curves import average_precision
from fairness.figures import GroupIndex, figure_groups
from fairness.metrics import nanmean
from fairness.passes import GROUP_METRICS, BootstrapPass, PointPass, PreparedRun, group_summary
from fairness.registry import bias_note, is_gap
from fairness.report import Figure, GroupResult
from fairness.resampling import at_bound, minimum_detectable_effect, percentile_intervals


def intervals(replicates: dict, names, confidence: float) -> dict:
    """Percentile CI of each name's replicates (NaN, NaN where there are none), computed in one call."""
    present = [name for name in names if name in replicates]
    out = {name: (float("nan"), float("nan")) for name in names}
    if present:
        bounds = percentile_intervals(np.stack([replicates[name] for name in present]), confidence=confidence)
        out.update({name: (float(low), float(high)) for name, (low, high) in zip(present, bounds)})
    return out


def figure_table(run: PreparedRun, point: PointPass, boot: BootstrapPass, p_values: dict, adjusted: dict, *,
                 confidence: float, limits: "Limits", n_perm: int) -> dict[str, Figure]:
    cis = intervals(boot.figures, list(point.figures), confidence)
    sizes = GroupSizes.of(run)
    figures = {}
    for name, values in point.figures.items():
        value = float(values[0])
        replicates = boot.figures.get(name)
        gap = is_gap(name)
        p_value = p_values.get(name) if gap else None
        figures[name] = Figure(
            value=value,
            ci=cis[name],
            p_value=p_value,
            p_adj=adjusted.get(name),
            flag=flag(name, value, run.index, sizes, limits, n_classes=len(run.classes), classes=run.classes),
            replicates=replicates,
            p_at_bound=at_bound(p_value, n_perm),
            mde=minimum_detectable_effect(replicates) if gap else None,
            note=bias_note(name, len(figure_groups(name, run.index))) if gap else "",
        )
    return figures


def class_table(run: PreparedRun, point: PointPass, boot: BootstrapPass, *, confidence: float) -> dict:
    """name -> class -> Figure, for the per-class figures."""
    out = {}
    for name, values in point.by_class.items():
        columns = {cls: boot.by_class[name][:, c] for c, cls in enumerate(run.classes)} if boot.by_class else {}
        cis = intervals(columns, run.classes, confidence)
        out[name] = {cls: Figure(value=float(values[0, c]), ci=cis[cls], replicates=columns.get(cls))
                     for c, cls in enumerate(run.classes)}
    return out


@dataclass(frozen=True)
class Limits:
    """When a figure is flagged: groups under `min_group_size` images, or a class with fewer than
    `min_positives` positives (or negatives) in one of its groups."""

    min_group_size: int = 30
    min_positives: int = 20


class GroupSizes:
    """Point counts per group: images [G], positives and negatives [G, C]."""

    def __init__(self, count, positives, negatives, classes=None):
        self.count, self.positives, self.negatives, self.classes = count, positives, negatives, classes

    @classmethod
    def of(cls, run: PreparedRun) -> "GroupSizes":
        """Unweighted counts of the run's test images per group (also under prevalence reweighting); per class,
        positives and negatives count only known labels (a masked entry is neither)."""
        masks = run.masks[:, run.groups.atom_of_image].astype(np.float64)  # [G, n]
        count = masks.sum(axis=1)
        known = np.ones(run.y.shape) if run.known is None else run.known.astype(np.float64)
        positives = masks @ (run.y * known)
        return cls(count, positives, masks @ known - positives, run.classes)

    def few_positives(self, g: int, minimum: int, classes) -> list[str]:
        """"positives < m: Class n, ..." and "negatives < m: ..." for group g's classes under `minimum`."""
        parts = []
        for what, counts in (("positives", self.positives[g]), ("negatives", self.negatives[g])):
            few = [f"{cls} {int(round(counts[c]))}" for c, cls in enumerate(classes) if counts[c] < minimum]
            if few:
                parts.append(f"{what} < {minimum}: " + ", ".join(few))
        return parts


def flag(name: str, value: float, index: GroupIndex, sizes: GroupSizes, limits: Limits,
         n_classes: int | None = None, classes=None) -> str:
    if not np.isfinite(value) and name == "var_f1" and n_classes is not None and n_classes < 2:
        return "undefined (a variance over classes needs two or more classes)"
    if not np.isfinite(value):
        return "undefined (a group lacks images, positives or negatives)"
    groups = figure_groups(name, index)
    parts = []
    names = classes or [str(c) for c in range(sizes.positives.shape[1])]
    overall = index.position.get(("overall", "all"))
    absent = [cls for c, cls in enumerate(names) if sizes.positives[overall, c] == 0] if overall is not None else []
    if absent and overall in groups:
        parts.append("no positive test image for " + ", ".join(absent) + ": left out of the class means")
    small = [f"{index.table[g][1]} (n={int(sizes.count[g])})" for g in groups if sizes.count[g] < limits.min_group_size]
    if small:
        parts.append(f"small group(s) below {limits.min_group_size}: " + ", ".join(small))
    few = [f"{index.table[g][1]} {item}" for g in groups for item in sizes.few_positives(g, limits.min_positives, names)]
    if few:
        parts.append("; ".join(few[:3]) + (f"; and {len(few) - 3} more" if len(few) > 3 else ""))
    return "; ".join(parts)


def _average_precision(y, p, masks, known=None) -> np.ndarray:
    """Macro average precision [G] of each group (image masks [G, n]; `known` [n, C]: masked entries left out of
    their class); each class's scores sorted once."""
    values = np.full((masks.shape[0], y.shape[1]), np.nan)
    for c in range(y.shape[1]):
        order = np.argsort(-p[:, c], kind="mergesort")
        order = order if known is None else order[known[order, c]]
        for g in range(masks.shape[0]):
            chosen = order[masks[g, order]]
            if y[chosen, c].sum() > 0:
                values[g, c] = average_precision(y[chosen, c], p[chosen, c], presorted=True)
    return nanmean(values, axis=1)


def group_table(run: PreparedRun, point: PointPass, boot: BootstrapPass, *, confidence: float,
                limits: Limits) -> list[GroupResult]:
    """One row per reported group: size, patients, positives per class, metrics with CIs, a small-group flag."""
    point_summary = group_summary(point.metrics)
    image_masks = run.masks[:, run.groups.atom_of_image]
    precision = _average_precision(run.y, run.p, image_masks, run.known)
    sizes = GroupSizes.of(run)
    names = [name for name in GROUP_METRICS if name != "average_precision"]
    keys = [(g, name) for g in range(len(run.index.table)) for name in names]
    columns = {key: boot.groups[key[1]][:, key[0]] for key in keys} if boot.groups else {}
    cis = intervals(columns, keys, confidence)
    rows = []
    for g, (attr, level, _) in enumerate(run.index.table):
        count = int(sizes.count[g])
        metrics = {"average_precision": Figure(value=float(precision[g]), ci=(np.nan, np.nan))}
        for name in names:
            metrics[name] = Figure(value=float(point_summary[name][0, g]), ci=cis[(g, name)],
                                   replicates=columns.get((g, name)))
        rows.append(GroupResult(
            attribute=attr, level=level, count=count,
            positives={cls: int(sizes.positives[g, c]) for c, cls in enumerate(run.classes)},
            metrics={name: metrics[name] for name in GROUP_METRICS},
            flag=_group_flag(g, sizes, limits), patients=int(np.unique(run.patient_index[image_masks[g]]).size),
        ))
    return rows


def _group_flag(g: int, sizes: GroupSizes, limits: Limits) -> str:
    parts = []
    if sizes.count[g] < limits.min_group_size:
        parts.append(f"small group (n={int(sizes.count[g])} < {limits.min_group_size})")
    if sizes.count[g] > 0:
        parts += sizes.few_positives(g, limits.min_positives, sizes.classes)
    return "; ".join(parts)
