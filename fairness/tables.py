"""The tables of a report built from the passes: figures with CIs and flags, per-class figures, per-group rows."""

from __future__ import annotations

import numpy as np

from fairness.curves import average_precision
from fairness.figures import GroupIndex, figure_groups
from fairness.metrics import nanmean
from fairness.passes import GROUP_METRICS, BootstrapPass, PointPass, PreparedRun, group_summary
from fairness.registry import is_gap
from fairness.report import Figure, GroupResult
from fairness.resampling import percentile_intervals


def intervals(replicates: dict, names, confidence: float) -> dict:
    """Percentile CI of each name's replicates (NaN, NaN where there are none), computed in one call."""
    present = [name for name in names if name in replicates]
    out = {name: (float("nan"), float("nan")) for name in names}
    if present:
        bounds = percentile_intervals(np.stack([replicates[name] for name in present]), confidence=confidence)
        out.update({name: (float(low), float(high)) for name, (low, high) in zip(present, bounds)})
    return out


def figure_table(run: PreparedRun, point: PointPass, boot: BootstrapPass, p_values: dict, adjusted: dict, *,
                 confidence: float, min_group_size: int) -> dict[str, Figure]:
    counts = point.metrics.count[0]
    cis = intervals(boot.figures, list(point.figures), confidence)
    figures = {}
    for name, values in point.figures.items():
        value = float(values[0])
        figures[name] = Figure(
            value=value,
            ci=cis[name],
            p_value=p_values.get(name) if is_gap(name) else None,
            p_adj=adjusted.get(name),
            flag=flag(name, value, run.index, counts, min_group_size, n_classes=len(run.classes)),
            replicates=boot.figures.get(name),
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


def flag(name: str, value: float, index: GroupIndex, counts: np.ndarray, min_group_size: int,
         n_classes: int | None = None) -> str:
    if not np.isfinite(value) and name == "var_f1" and n_classes is not None and n_classes < 2:
        return "undefined (a variance over classes needs two or more classes)"
    if not np.isfinite(value):
        return "undefined (a group lacks images, positives or negatives)"
    small = [f"{index.table[g][1]} (n={int(counts[g])})" for g in figure_groups(name, index)
             if counts[g] < min_group_size]
    if small:
        return f"small group(s) below {min_group_size}: " + ", ".join(small)
    return ""


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


def group_table(run: PreparedRun, point: PointPass, boot: BootstrapPass, *, confidence: float,
                min_group_size: int) -> list[GroupResult]:
    """One row per reported group: size, positives per class, macro metrics with CIs, a small-group flag."""
    point_summary = group_summary(point.metrics)
    precision = _average_precision(run.y, run.p, run.masks[:, run.groups.atom_of_image])
    names = [name for name in GROUP_METRICS if name != "average_precision"]
    keys = [(g, name) for g in range(len(run.index.table)) for name in names]
    columns = {key: boot.groups[key[1]][:, key[0]] for key in keys} if boot.groups else {}
    cis = intervals(columns, keys, confidence)
    rows = []
    for g, (attr, level, _) in enumerate(run.index.table):
        count = int(point.metrics.count[0, g])
        metrics = {"average_precision": Figure(value=float(precision[g]), ci=(np.nan, np.nan))}
        for name in names:
            metrics[name] = Figure(value=float(point_summary[name][0, g]), ci=cis[(g, name)],
                                   replicates=columns.get((g, name)))
        rows.append(GroupResult(
            attribute=attr, level=level, count=count,
            positives={cls: int(point.metrics.positives[0, g, c]) for c, cls in enumerate(run.classes)},
            metrics={name: metrics[name] for name in GROUP_METRICS},
            flag=f"small group (n={count} < {min_group_size})" if count < min_group_size else "",
        ))
    return rows
