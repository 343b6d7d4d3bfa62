"""`bench perf heads`: the heads on an NIH-size synthetic store, and the linear probe beside scikit-learn.

On synthetic float16 embeddings (default 112,120 x 512, 15 labels, patient structure, a planted signal;
`heads.synthetic`), in this process and on this machine:

1. linear probe (its whole C sweep) + MLP + zero-shot fitted: seconds each and in total (goal <= 60 s), and
   the peak resident memory while they run (goal <= 2 GB; Linux VmHWM after resetting it, else ru_maxrss);
2. scikit-learn `LogisticRegression` (lbfgs, one-vs-rest through `OneVsRestClassifier`) on the same
   standardised data with the same C grid and the same selection on val: seconds, and the ratio to ours
   (goal >= 5x), with the test macro AUC of both (goal: within 0.005);
3. the mitigation heads (`benchmark.perf.mitigation`): reweighting and GroupDRO <= 60 s each, threshold
   optimisation <= 10 s, the exponentiated-gradient probe's runtime.

The data are synthetic: the AUCs show the two solvers agree, not anything about X-rays.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np

GOAL_TOTAL_SECONDS = 60.0
GOAL_PEAK_BYTES = 2 * 1024**3
GOAL_SPEEDUP = 5.0
GOAL_AUC_DIFFERENCE = 0.005


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=112_120, help="images (default 112,120 as NIH ChestX-ray14)")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (default 512)")
    parser.add_argument("--classes", type=int, default=15, help="labels (default 15: 14 findings + No Finding)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the heads")
    parser.add_argument("--skip-sklearn", action="store_true", help="only our heads (no scikit-learn baseline)")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="CPU threads for both torch and scikit-learn's BLAS (default: torch's default, one per core); "
        "use 1 on a machine shared with other jobs, where spinning threads can cost 10x",
    )
    parser.add_argument("--sklearn-max-iter", type=int, default=100, help="scikit-learn lbfgs max_iter (its default 100)")
    from benchmark.perf import mitigation

    mitigation.add_arguments(parser)


def _reset_peak_memory() -> bool:
    """Reset the kernel's peak-RSS counter for this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_memory_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def _timed_cpu(function):
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - started, time.process_time() - cpu


def run(args) -> int:
    import torch
    from threadpoolctl import threadpool_limits

    threads = args.threads or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            return _run(args)
    finally:
        torch.set_num_threads(previous)


def _run(args) -> int:
    from benchmark.ui import console
    from heads.synthetic import synthetic_embeddings

    data, generate_seconds = _timed(lambda: synthetic_embeddings(args.n, args.dim, args.classes, seed=args.seed))
    result, fit_linear = _fit_heads(args, data)
    result["generate_seconds"] = round(generate_seconds, 2)
    if not args.skip_mitigation:
        from benchmark.perf import mitigation

        result["mitigation"] = mitigation.measure(args, data, result.pop("_linear"))
    result.pop("_linear", None)
    if not args.skip_sklearn:
        _compare_with_sklearn(result, data, fit_linear, args.sklearn_max_iter)
    if args.json:
        console.out(json.dumps(result, indent=2), highlight=False)
    else:
        _print_table(result, console)
    return 0


def _fit_heads(args, data) -> tuple[dict, object]:
    """Time the linear probe (C sweep), the MLP and zero-shot on the synthetic store; peak memory around them."""
    import torch

    from heads.common import macro_auc
    from heads.linear import DEFAULT_CS, LinearProbe
    from heads.mlp import MLPHead
    from heads.zeroshot import ZeroShotHead

    train, val, test = data.indices("train"), data.indices("val"), data.indices("test")
    X, y = data.image, data.labels
    classes = [f"class{i}" for i in range(args.classes)]
    # Warm-up on a few rows so one-time library initialisation is not billed to either side.
    LinearProbe(Cs=(1.0,)).fit(X[:256], y[:256], X[256:512], y[256:512])
    exact_peak = _reset_peak_memory()

    def fit_linear():
        return LinearProbe(Cs=DEFAULT_CS, random_state=args.seed).fit(X[train], y[train], X[val], y[val])

    linear, linear_seconds, linear_cpu = _timed_cpu(fit_linear)
    mlp, mlp_seconds = _timed(lambda: MLPHead(random_state=args.seed).fit(X[train], y[train], X[val], y[val]))
    zeroshot, zeroshot_seconds = _timed(
        lambda: ZeroShotHead(data.text, np.array(classes)[data.text_class], classes, kind="multi").fit(X[val], y[val])
    )
    peak = _peak_memory_bytes()
    result = {
        "n": args.n, "dim": args.dim, "classes": args.classes,
        "rows": {"train": int(train.size), "val": int(val.size), "test": int(test.size)},
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "C_grid": list(DEFAULT_CS),
        "linear": {"seconds": linear_seconds, "cpu_seconds": linear_cpu, "C": linear.C_,
                   "test_macro_auc": macro_auc(y[test], linear.predict_proba(X[test])),
                   "iterations": sum(linear.n_iter_.values())},
        "mlp": {"seconds": mlp_seconds, "epochs": mlp.epochs_run_,
                "test_macro_auc": macro_auc(y[test], mlp.predict_proba(X[test]))},
        "zeroshot": {"seconds": zeroshot_seconds, "test_macro_auc": macro_auc(y[test], zeroshot.predict_proba(X[test]))},
        "heads_total_seconds": linear_seconds + mlp_seconds + zeroshot_seconds, "_linear": linear,
        "peak_memory_bytes": peak,
        "peak_memory_measure": "VmHWM reset before the heads" if exact_peak else "ru_maxrss (whole process)",
        "goals": {"total_seconds": GOAL_TOTAL_SECONDS, "peak_bytes": GOAL_PEAK_BYTES, "speedup": GOAL_SPEEDUP,
                  "auc_difference": GOAL_AUC_DIFFERENCE},
    }
    return result, fit_linear


def _compare_with_sklearn(result: dict, data, fit_linear, max_iter: int) -> None:
    """scikit-learn on the same data and grid, then ours again (a change in machine load hits both sides)."""
    from heads.linear import DEFAULT_CS

    train, val, test = data.indices("train"), data.indices("val"), data.indices("test")
    result["sklearn"] = _sklearn_baseline(data.image, data.labels, train, val, test, DEFAULT_CS, max_iter)
    _, again_seconds, again_cpu = _timed_cpu(fit_linear)
    ours_seconds = (result["linear"]["seconds"] + again_seconds) / 2
    ours_cpu = (result["linear"]["cpu_seconds"] + again_cpu) / 2
    result["linear"]["seconds_again_after_sklearn"] = again_seconds
    result["speedup"] = result["sklearn"]["seconds"] / ours_seconds
    result["speedup_cpu"] = result["sklearn"]["cpu_seconds"] / ours_cpu
    result["ours_mean_seconds"], result["ours_mean_cpu_seconds"] = ours_seconds, ours_cpu
    result["auc_difference"] = abs(result["sklearn"]["test_macro_auc"] - result["linear"]["test_macro_auc"])


def _sklearn_baseline(X, y, train, val, test, Cs, max_iter: int) -> dict:
    """scikit-learn LogisticRegression (lbfgs) one-vs-rest over the same C grid, C picked by val log-loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from heads.common import macro_auc

    def mean_log_loss(labels, probabilities):
        p = np.clip(probabilities, 1e-12, 1 - 1e-12)
        if labels.ndim == 1:
            return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))
        return float(-np.mean(np.sum(labels * np.log(p) + (1 - labels) * np.log(1 - p), axis=1)))

    started, cpu = time.perf_counter(), time.process_time()
    scaler = StandardScaler().fit(X[train])
    X_train, X_val = scaler.transform(X[train]), scaler.transform(X[val])
    best = None
    scores = {}
    for C in sorted(Cs):
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter)
        model = OneVsRestClassifier(model) if y.ndim == 2 else model
        model.fit(X_train, y[train])
        scores[C] = mean_log_loss(y[val], model.predict_proba(X_val))
        if best is None or scores[C] < best[0]:
            best = (scores[C], C, model)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    auc = macro_auc(y[test], best[2].predict_proba(scaler.transform(X[test])))
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "C": best[1], "test_macro_auc": auc, "max_iter": max_iter, "dtype": str(X_train.dtype)}


def _print_table(result: dict, console) -> None:
    from rich.table import Table

    def verdict(ok: bool) -> str:
        return "[green]meets goal[/]" if ok else "[red]misses goal[/]"

    console.print(
        f"synthetic store {result['n']:,} x {result['dim']} float16, {result['classes']} labels "
        f"(train {result['rows']['train']:,} / val {result['rows']['val']:,} / test {result['rows']['test']:,}); "
        f"{result['threads']} torch threads on {result['cpus']} CPUs; data generated in {result['generate_seconds']} s",
        highlight=False,
    )
    heads = Table(title="heads fitted (synthetic data: AUCs show the code works, nothing medical)")
    for column in ("head", "seconds", "test macro AUC", "detail"):
        heads.add_column(column)
    heads.add_row("linear (C sweep)", f"{result['linear']['seconds']:.1f}", f"{result['linear']['test_macro_auc']:.4f}",
                  f"C={result['linear']['C']:g}, {result['linear']['iterations']} L-BFGS iterations over {len(result['C_grid'])} C")
    heads.add_row("mlp", f"{result['mlp']['seconds']:.1f}", f"{result['mlp']['test_macro_auc']:.4f}", f"{result['mlp']['epochs']} epochs")
    heads.add_row("zeroshot", f"{result['zeroshot']['seconds']:.2f}", f"{result['zeroshot']['test_macro_auc']:.4f}", "prompt prototypes")
    total_ok = result["heads_total_seconds"] <= GOAL_TOTAL_SECONDS
    heads.add_row("[bold]total[/]", f"{result['heads_total_seconds']:.1f}", "", f"goal <= {GOAL_TOTAL_SECONDS:.0f} s: {verdict(total_ok)}")
    peak_ok = result["peak_memory_bytes"] <= GOAL_PEAK_BYTES
    heads.add_row("peak memory", f"{result['peak_memory_bytes'] / 1024**3:.2f} GB", "", f"{result['peak_memory_measure']}; goal <= 2 GB: {verdict(peak_ok)}")
    from benchmark.perf.mitigation import add_rows

    add_rows(heads, result, verdict)
    console.print(heads)
    if "sklearn" not in result:
        return
    side = Table(title="linear probe vs scikit-learn LogisticRegression (lbfgs, one-vs-rest), same data and C grid")
    for column in ("", "ours", "scikit-learn", "ratio / difference"):
        side.add_column(column)
    sk = result["sklearn"]
    side.add_row("wall seconds (ours: mean of a run before and after)", f"{result['ours_mean_seconds']:.1f}", f"{sk['seconds']:.1f}",
                 f"{result['speedup']:.1f}x faster ({verdict(result['speedup'] >= GOAL_SPEEDUP)} >= {GOAL_SPEEDUP:.0f}x)")
    side.add_row("CPU seconds (all threads)", f"{result['ours_mean_cpu_seconds']:.1f}", f"{sk['cpu_seconds']:.1f}",
                 f"{result['speedup_cpu']:.1f}x less CPU time")
    side.add_row("test macro AUC", f"{result['linear']['test_macro_auc']:.4f}", f"{sk['test_macro_auc']:.4f}",
                 f"{result['auc_difference']:.4f} ({verdict(result['auc_difference'] <= GOAL_AUC_DIFFERENCE)} <= {GOAL_AUC_DIFFERENCE})")
    side.add_row("C chosen on val", f"{result['linear']['C']:g}", f"{sk['C']:g}", "")
    console.print(side)
