"""The mitigation rows of `bench perf heads`: each mitigation head on the same NIH-size synthetic store.

The store of `benchmark.perf.heads` (default 112,120 x 512 float16, 15 labels) with a protected attribute drawn per
patient (43.5% in one group, NIH's share of women): group-balanced reweighting and resampling of the linear probe
and the MLP, GroupDRO of both (its whole step-size search), the threshold optimisation of `thresholds-eqodds`
(fitting the group thresholds of every class on val and applying them to val + test; the plain probe under it is
the linear row above), and the exponentiated-gradient probe on its `max_rows` training rows. Goals: reweighting
and GroupDRO <= 60 s each, threshold optimisation <= 10 s; the reduction's runtime is reported.
"""

from __future__ import annotations

import time

import numpy as np

GOAL_HEAD_SECONDS = 60.0
GOAL_THRESHOLD_SECONDS = 10.0
GROUP_SHARE = 0.435
TIMED_HEADS = ("linear-reweight", "linear-resample", "mlp-reweight", "mlp-resample", "linear-groupdro", "mlp-groupdro")


def add_arguments(parser) -> None:
    parser.add_argument("--skip-mitigation", action="store_true", help="no mitigation rows")
    parser.add_argument("--expgrad-classes", type=int, default=None,
                        help="time the exponentiated-gradient probe on the K classes with the most train positives only "
                             "(default: all; about 10 s per class on 2 cores); 0 skips it")


def patient_groups(data, seed: int) -> np.ndarray:
    """A binary protected attribute per patient (GROUP_SHARE in group 1), as group codes per row."""
    rng = np.random.default_rng([seed, 17])
    return (rng.random(int(data.patient.max()) + 1) < GROUP_SHARE).astype(np.int64)[data.patient]


def measure(args, data, linear) -> dict:
    """Seconds (and what each head chose) for every mitigation row; `linear`: the fitted plain linear probe."""
    from heads.common import macro_auc
    from heads.registry import HEADS

    train, val, test = data.indices("train"), data.indices("val"), data.indices("test")
    X, y, groups = data.image, data.labels, patient_groups(data, args.seed)
    rows = {}
    for name in TIMED_HEADS:
        head = HEADS[name].create(random_state=args.seed)
        started = time.perf_counter()
        head.fit(X[train], y[train], X[val], y[val], groups=groups[train], groups_val=groups[val])
        seconds = time.perf_counter() - started
        chosen = head.chosen_on_val()
        rows[name] = {"seconds": seconds, "test_macro_auc": macro_auc(y[test], head.predict_proba(X[test])),
                      "detail": _detail(chosen)}
    rows["thresholds-eqodds"] = _thresholds(linear, X, y, groups, val, test)
    if args.expgrad_classes != 0:
        rows["expgrad-eqodds"] = _reduction(args, X, y, groups, train, val)
    return rows


def _detail(chosen: dict) -> str:
    if "step_size" in chosen:
        searched = ", ".join(chosen["val_worst_group_loss_by_step"])
        return f"eta={chosen['step_size']:g} of {searched}; best epoch {chosen['best_epoch']} of {chosen['epochs_run']}"
    if "C" in chosen:
        return f"C={chosen['C']:g}"
    return f"best epoch {chosen['best_epoch']} of {chosen['epochs_run']}"


def _thresholds(linear, X, y, groups, val, test) -> dict:
    """Group thresholds of every class fitted on val, then applied to val + test (the plain probe is given)."""
    from heads.constrained import GroupThresholds

    scores_val, scores_test = linear.predict_proba(X[val]), linear.predict_proba(X[test])
    head = GroupThresholds(constraints="equalized_odds")
    started = time.perf_counter()
    head.fit_thresholds(scores_val, y[val], groups[val])
    fit_seconds = time.perf_counter() - started
    head.apply_thresholds(scores_val, groups[val])
    head.apply_thresholds(scores_test, groups[test])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fit_seconds": fit_seconds,
            "detail": f"{y.shape[1] - len(head.unconstrained_classes_)} classes constrained; fit {fit_seconds:.1f} s"}


def _reduction(args, X, y, groups, train, val) -> dict:
    from heads.constrained import ReductionsProbe

    classes = y.shape[1] if args.expgrad_classes is None else min(args.expgrad_classes, y.shape[1])
    columns = np.sort(np.argsort(-(y[train] > 0).sum(axis=0), kind="stable")[:classes])  # the most positives: constrainable
    head = ReductionsProbe(constraints="equalized_odds", random_state=args.seed)
    started = time.perf_counter()
    head.fit(X[train], y[train][:, columns], X[val], y[val][:, columns], groups=groups[train], groups_val=groups[val])
    seconds = time.perf_counter() - started
    calls = sum(head.oracle_calls_.values())
    return {"seconds": seconds, "classes": classes, "rows_used": head.rows_used_, "oracle_calls": calls,
            "detail": f"{classes} classes on {head.rows_used_:,} rows, {calls} oracle fits (runtime reported, no goal)"}


def add_rows(table, result: dict, verdict) -> None:
    """The mitigation rows of the heads table."""
    for name, row in result.get("mitigation", {}).items():
        goal = GOAL_THRESHOLD_SECONDS if name.startswith("thresholds") else None if name.startswith("expgrad") else GOAL_HEAD_SECONDS
        auc = f"{row['test_macro_auc']:.4f}" if "test_macro_auc" in row else ""
        judged = f"; goal <= {goal:.0f} s: {verdict(row['seconds'] <= goal)}" if goal is not None else ""
        label = "thresholds-eqodds (post-processing only)" if name.startswith("thresholds") else name
        table.add_row(label, f"{row['seconds']:.1f}", auc, row["detail"] + judged)
