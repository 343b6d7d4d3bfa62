"""The curves of one run, per group: a macro-average ROC curve and a reliability diagram.

ROC: for each class with positives and negatives in the group, the one-vs-rest ROC curve (the same cut points
as scikit-learn, `fairness.curves.binary_curve`), its TPR read on a grid of FPR values (the upper step of the
curve), then the mean over classes: its area is the group's macro AUC up to the grid.

Reliability: the calibration channels of the `ece` figure (`fairness.calibration.channels`: each class for a
multi-label task, pooled here, masked labels left out; the top label for a single-label task), cut into 10
equal-mass bins at the deciles of the whole test set's scores (as `ece` bins them); per group and bin, the mean
score, the share that is right and the count. Plotted, the distance from the diagonal is the miscalibration
`ece` measures.

Groups are those of the leaderboard's evaluation (`fairness.inputs.resolve_groups` with the options it recorded).
"""

from __future__ import annotations

import numpy as np

FPR_GRID = np.linspace(0.0, 1.0, 101)
N_BINS = 10


def _test_arrays(run):
    import polars as pl

    from benchmark.core.predictions import prediction_classes
    from benchmark.core.schema import label_column, probability_column

    classes = prediction_classes(run.frame)
    test = run.frame.filter(pl.col("split") == "test")
    y = test.select([label_column(c) for c in classes]).to_numpy().astype(np.float64)
    p = test.select([probability_column(c) for c in classes]).to_numpy().astype(np.float64)
    return test, y, p


def _group_masks(test, options) -> list[tuple[str, str, np.ndarray]]:
    """(attribute, level, image mask) of every reported group, the leaderboard's groups."""
    from benchmark.core.predictions import extra_group_values
    from fairness.inputs import resolve_groups

    def column(name):
        if name not in test.columns:
            return None
        values = test[name].to_list()
        return None if all(v is None for v in values) else values

    attributes = options.get("attributes") or ()
    groups = resolve_groups(test.height, sex=column("sex"), age=column("age"), columns=extra_group_values(test),
                            attributes=attributes, age_bins=options.get("age_bins", "binary"),
                            seed_exact=bool(options.get("seed_exact"))).groups
    atoms = groups.atom_of_image
    return [(attribute, level, mask[atoms]) for attribute, level, mask in groups.group_table()]


def macro_roc(y: np.ndarray, p: np.ndarray) -> list[float] | None:
    """Mean over classes (with both labels) of TPR at `FPR_GRID`; None when no class has both."""
    from fairness.curves import binary_curve

    curves = []
    for c in range(y.shape[1]):
        known = ~np.isnan(y[:, c])  # a masked label (NaN) is left out of its class
        labels, scores = y[known, c], p[known, c]
        positives, negatives = labels.sum(), labels.size - labels.sum()
        if positives == 0 or negatives == 0:
            continue
        _, tp, fp = binary_curve(labels, scores)
        fpr, tpr = np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]
        index = np.searchsorted(fpr, FPR_GRID, side="right") - 1  # the highest TPR reached at FPR <= grid point
        curves.append(tpr[np.clip(index, 0, tpr.size - 1)])
    return None if not curves else [round(float(v), 5) for v in np.mean(curves, axis=0)]


def reliability(scores: np.ndarray, outcomes: np.ndarray, bins: np.ndarray, mask: np.ndarray) -> dict:
    """Per bin: mean score, share right, count, over the group's pooled channels (masked entries, NaN, left out)."""
    chosen = mask[:, None] & ~np.isnan(outcomes)
    b, s, o = bins[chosen], scores[chosen], outcomes[chosen]
    count = np.bincount(b, minlength=N_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(b, weights=s, minlength=N_BINS) / count
        observed = np.bincount(b, weights=o, minlength=N_BINS) / count
    keep = count > 0
    return {"score": [round(float(v), 5) for v in mean_score[keep]],
            "observed": [round(float(v), 5) for v in observed[keep]], "count": count[keep].astype(int).tolist()}


def run_curves(entry) -> dict:
    """{"run", "channels", "groups": [{"attribute", "level", "count", "roc", "reliability"}], "fpr"}."""
    from fairness.calibration import channels

    test, y, p = _test_arrays(entry.run)
    scores, outcomes = channels(y, p, entry.report.kind)
    edges = np.quantile(scores[~np.isnan(outcomes)], np.linspace(0.0, 1.0, N_BINS + 1)[1:-1])
    bins = np.searchsorted(edges, scores, side="right")
    groups = []
    for attribute, level, mask in _group_masks(test, entry.report.options):
        groups.append({"attribute": attribute, "level": level, "count": int(mask.sum()),
                       "roc": macro_roc(y[mask], p[mask]) if mask.any() else None,
                       "reliability": reliability(scores, outcomes, bins, mask)})
    return {"run": entry.run.name, "kind": entry.report.kind,
            "channels": "top label" if entry.report.kind == "single" else "every class, pooled",
            "fpr": [round(float(v), 5) for v in FPR_GRID], "groups": groups}
