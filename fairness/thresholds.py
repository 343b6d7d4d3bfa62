"""Decision thresholds: chosen on the validation predictions, applied unchanged to test.

Thresholds are never tuned on test (tuning them on test, as some benchmarks do, leaks the labels into the
figures). Rules, per class:
- "f1" (default): the threshold that maximises F1 on val (CheXclusion's protocol);
- "youden": the threshold that maximises TPR - FPR (Youden's J) on val;
- "fixed": a fixed value (0.5 by default; FairCLIP's choice).
Single-label tasks take the arg-max class and need no threshold.
An image is called positive for a class when its probability is >= the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import BenchError
from fairness.curves import f1_max_threshold, youden_threshold

RULES = ("f1", "youden", "fixed")
ERR_RULE = "unknown threshold rule {rule!r}; choose one of: " + ", ".join(RULES)
ERR_SHAPE = "{what} has shape {shape}; expected [n images, {classes} classes]"


@dataclass(frozen=True)
class Thresholds:
    """What decides a positive: per-class `values` (multi-label) or arg-max (single-label), and how chosen."""

    kind: str  # "single" or "multi"
    rule: str  # "argmax", "f1", "youden", "fixed", or "fixed (no val split)"
    values: tuple[float, ...]  # one per class (empty for argmax)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "rule": self.rule, "values": list(self.values)}


def choose_thresholds(*, y_val, p_val, kind: str, rule: str = "f1", fixed: float = 0.5) -> Thresholds:
    """Choose thresholds from the val labels and probabilities (never the test ones).

    `y_val` [n, C] 0/1 (NaN: masked, left out of its class's choice), `p_val` [n, C] probabilities; `kind`
    "single" (arg-max) or "multi". When there is
    no val split (`y_val` is None or empty) a multi-label task falls back to the fixed threshold and says
    so in the recorded rule.
    """
    if rule not in RULES:
        raise BenchError(ERR_RULE.format(rule=rule))
    if kind == "single":
        return Thresholds(kind="single", rule="argmax", values=())
    if p_val is None or len(p_val) == 0:
        classes = 0 if p_val is None else np.asarray(p_val).shape[-1]
        return Thresholds(kind="multi", rule="fixed (no val split)", values=(float(fixed),) * classes)
    y_val = np.asarray(y_val, dtype=np.float64)  # NaN: a masked label, skipped for its class
    p_val = np.asarray(p_val, dtype=np.float64)
    if y_val.shape != p_val.shape or y_val.ndim != 2:
        raise BenchError(ERR_SHAPE.format(what="y_val", shape=y_val.shape, classes=p_val.shape[-1]))
    if rule == "fixed":
        return Thresholds(kind="multi", rule="fixed", values=(float(fixed),) * p_val.shape[1])
    pick = f1_max_threshold if rule == "f1" else youden_threshold
    known = ~np.isnan(y_val)
    values = tuple(pick(y_val[known[:, c], c], p_val[known[:, c], c]) for c in range(p_val.shape[1]))
    return Thresholds(kind="multi", rule=rule, values=values)


def decide(p, thresholds: Thresholds) -> np.ndarray:
    """0/1 decisions [n, C]: one-hot arg-max for single-label, p >= threshold per class for multi-label."""
    p = np.asarray(p, dtype=np.float64)
    if thresholds.kind == "single":
        decisions = np.zeros(p.shape, dtype=np.int8)
        decisions[np.arange(p.shape[0]), np.argmax(p, axis=1)] = 1
        return decisions
    if len(thresholds.values) != p.shape[1]:
        raise BenchError(ERR_SHAPE.format(what="probabilities", shape=p.shape, classes=len(thresholds.values)))
    return (p >= np.asarray(thresholds.values)[None, :]).astype(np.int8)


DECISION_THRESHOLD = 0.5


def keep_decisions(thresholds: Thresholds, columns) -> Thresholds:
    """`thresholds` with the class `columns` (indices) at 0.5: columns that hold the 0/1 decisions of a
    randomised, fairness-constrained classifier (`heads.constrained`), which a threshold chosen on val would
    overrule (an F1-max threshold can call every image positive, which makes any gap vanish)."""
    columns = sorted(set(int(c) for c in columns))
    if thresholds.kind != "multi" or not columns:
        return thresholds
    values = list(thresholds.values)
    for column in columns:
        values[column] = DECISION_THRESHOLD
    return Thresholds(kind="multi", rule=f"{thresholds.rule}; decisions at {DECISION_THRESHOLD} for classes {columns}",
                      values=tuple(values))


def decision_thresholds(chosen: dict, classes, kind: str, y_val, p_val, options: dict) -> dict:
    """`evaluate` options for a run whose record names classes holding 0/1 decisions (`chosen["decision_classes"]`,
    written by the fairness-constrained heads): thresholds chosen on val as `options` ask, those classes kept at
    0.5. Other runs' options come back unchanged."""
    decided = [list(classes).index(name) for name in (chosen or {}).get("decision_classes", ()) if name in classes]
    if not decided or kind != "multi" or options.get("thresholds") is not None:
        return options
    chosen_on_val = choose_thresholds(y_val=y_val, p_val=p_val, kind=kind, rule=options.get("threshold_rule", "f1"),
                                      fixed=options.get("fixed_threshold", 0.5))
    if not chosen_on_val.values:
        chosen_on_val = Thresholds(kind="multi", rule=chosen_on_val.rule, values=(0.5,) * len(classes))
    return {**options, "thresholds": keep_decisions(chosen_on_val, decided)}
