"""`bench perf report`: `bench report` on a large leaderboard: R runs (default 100: 5 encoders x 5 methods x 4 seeds)
on one test set of N images (default 25,000, about N / 3.64 patients, C classes, multi-label, sex and age), as
the report is made after the leaderboard's evaluation: collecting the data (per-class figures, curves of one run,
provenance), drawing the seven figures (SVG, PNG at 300 dpi, PDF each), and writing the tables and the page.

The leaderboard's evaluation (bootstrap, tests, ranks) is timed beside it for scale, with B replicates (default
200; the report does not resample, so its time does not depend on B) and no permutation tests: it is the
leaderboard's cost (`bench perf fairness`), not the report's. Goals: report <= 30 s, drawing <= 10 s on 2 cores.
Synthetic numbers; they say nothing medical.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("zeroshot", "linear", "mlp", "lora", "full")


def add_arguments(parser) -> None:
    parser.add_argument("--runs", type=int, default=100, help="runs on the leaderboard (default 100)")
    parser.add_argument("--n", type=int, default=25_000, help="test images (default 25,000)")
    parser.add_argument("--classes", type=int, default=14, help="classes (default 14, NIH ChestX-ray14)")
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates of the evaluation (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--out", default=None, help="keep the report in this folder (default: a temporary one)")


def synthetic_runs(*, runs: int, n: int, classes: int, seed: int) -> list:
    """RunInputs of `runs` synthetic runs (encoder x method x seed) on one test set, with a val split."""
    import polars as pl

    from benchmark.core.runs import RunRecord
    from benchmark.leaderboard import RunInput
    from benchmark.perf.fairness import synthetic_scores, synthetic_test_set

    rng = np.random.default_rng(seed)
    patient, sex, age, y = synthetic_test_set(n=n, classes=classes, seed=seed)
    v_patient, v_sex, v_age, y_val = synthetic_test_set(n=max(n // 5, 50), classes=classes, seed=seed + 1)
    names = [f"class{c}" for c in range(classes)]
    base = {"image_id": [f"t{i}" for i in range(n)] + [f"v{i}" for i in range(v_sex.size)],
            "patient_id": [f"p{i}" for i in patient] + [f"vp{i}" for i in v_patient],
            "sex": np.r_[sex, v_sex], "age": np.r_[age, v_age], "split": ["test"] * n + ["val"] * v_sex.size}
    base.update({f"y_{c}": np.r_[y[:, j], y_val[:, j]].astype(np.int8) for j, c in enumerate(names)})
    out = []
    for index in range(runs):
        encoder, method, repeat = f"encoder-{index // 20}", METHODS[(index // 4) % 5], index % 4
        p = np.r_[synthetic_scores(y, sex, rng), synthetic_scores(y_val, v_sex, rng)]
        frame = pl.DataFrame({**base, **{f"p_{c}": p[:, j] for j, c in enumerate(names)}})
        name = f"{encoder}-{method}-s{repeat}"
        record = RunRecord(run_id=name, encoder=encoder, method=method, task="perf", task_kind="multi",
                           classes=tuple(names), seed=repeat, weights_tag="random-init", dataset="perf-synthetic")
        out.append(RunInput(name=name, method=method, encoder=encoder, frame=frame, record=record, source="memory",
                            block="perf", seed=repeat, base_name=name))
    return out


def _write(document, out: Path, workers: int) -> tuple:
    """(ReportOutput, wall seconds, CPU seconds of this process and the children it waited for, folder bytes);
    with workers > 1 the figures are drawn by the fork server's children, which this CPU count does not see."""
    import resource

    from benchmark.report import ReportOptions, write_report

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    start, cpu_start = time.perf_counter(), cpu()
    result = write_report(document, out, ReportOptions(), workers=workers)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return result, time.perf_counter() - start, cpu() - cpu_start, size


def measure(args) -> dict:
    import os

    from benchmark import leaderboard
    from benchmark.report.data import report_document

    runs = synthetic_runs(runs=args.runs, n=args.n, classes=args.classes, seed=args.seed)
    start = time.perf_counter()
    board = leaderboard.build(runs, block="perf", n_boot=args.n_boot, n_perm=0, seed=args.seed)
    evaluation = time.perf_counter() - start
    start = time.perf_counter()
    document = report_document(board, runs, command=["perf", "report"])
    collect = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as scratch:
        serial, serial_wall, serial_cpu, _ = _write(document, Path(scratch) / "serial", workers=1)
        workers = max(2, min(4, os.cpu_count() or 2))  # side by side with one, whatever the load
        out = Path(args.out) if args.out else Path(scratch) / "report"
        parallel, wall, _, size = _write(document, out, workers=workers)
        page = parallel.page.stat().st_size
    return {
        "runs": args.runs, "images": args.n, "classes": args.classes, "n_boot": args.n_boot, "cores": os.cpu_count(),
        "evaluation_seconds": evaluation, "collect_seconds": collect, "workers": workers,
        "draw_seconds_serial": serial.draw_seconds, "draw_seconds": parallel.draw_seconds,
        "write_seconds_serial": serial_wall, "write_seconds": wall, "cpu_seconds_serial": serial_cpu,
        "report_seconds": collect + wall, "report_seconds_serial": collect + serial_wall,
        "figures_serial": {f.spec.name: round(f.seconds, 2) for f in serial.figures if not f.missing},
        "left_out": {f.spec.name: f.missing for f in parallel.figures if f.missing},
        "report_megabytes": size / 1e6, "page_megabytes": page / 1e6,
        "draw_speedup": serial.draw_seconds / parallel.draw_seconds, "load_average": os.getloadavg()[0],
        "goal_report_seconds": 30.0, "goal_draw_seconds": 10.0,
    }


def render(results: dict):
    from rich.table import Table

    table = Table(title=f"bench report: {results['runs']} runs x {results['images']:,} test images x "
                        f"{results['classes']} classes, {results['cores']} cores (synthetic data)")
    table.add_column("step")
    table.add_column("1 process", justify="right")
    table.add_column(f"{results['workers']} processes", justify="right")
    table.add_column("note")
    table.add_row("leaderboard evaluation (not the report's)", f"{results['evaluation_seconds']:.1f}", "",
                  f"B={results['n_boot']}, no permutations; the report reuses it")
    table.add_row("collect (per class, curves, provenance)", f"{results['collect_seconds']:.2f}", "", "")
    table.add_row("draw 7 figures x (SVG, PNG 300 dpi, PDF)", f"{results['draw_seconds_serial']:.1f}",
                  f"{results['draw_seconds']:.1f}", f"goal <= {results['goal_draw_seconds']:.0f}; "
                  f"{results['draw_speedup']:.2f}x; " + ", ".join(f"{k} {v}" for k, v in
                                                                   results["figures_serial"].items()))
    table.add_row("report, total (wall)", f"{results['report_seconds_serial']:.1f}", f"{results['report_seconds']:.1f}",
                  f"goal <= {results['goal_report_seconds']:.0f}; {results['report_megabytes']:.1f} MB, page "
                  f"{results['page_megabytes']:.1f} MB")
    table.add_row("CPU seconds, report", f"{results['cpu_seconds_serial']:.1f}", "",
                  "wall time depends on the other work on the machine (load average "
                  f"{results['load_average']:.1f} on {results['cores']} cores when it ended)")
    return table


def run(args) -> int:
    from benchmark.perf import emit

    return emit(measure(args), args, render)
