"""`bench perf run`: what `bench run` costs beyond the work it drives.

1. `bench run experiments/demo.toml` in a fresh workdir, then again (every job cached): the cached re-run's wall
   time and its ratio to the first run's (goal: <= 5 s). Both are the real command in a subprocess.
2. Planning an experiment of about 1,000 jobs (10 encoders x 33 seeds x heads + LoRA + full): reading and
   checking the file and expanding it (goal: <= 2 s), median of rounds; and `bench run --dry-run` on it, the
   whole command, for scale.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIG_ENCODERS = ("clip-vit-b16", "clip-vit-b32", "clip-rn50", "clip-rn50x4", "chexzero", "biomedclip", "medclip-rn",
                "medclip-vit", "gloria", "tiny-clip")
BIG_SEEDS = 33


def add_arguments(parser) -> None:
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the planning measurement (default 5)")
    parser.add_argument("--keep", default=None, metavar="DIR", help="keep the demo's workdir in DIR (default: a "
                        "temporary folder, removed afterwards)")
    parser.add_argument("--skip-demo", action="store_true", help="only the planning measurement")


def big_experiment_text(root: Path) -> str:
    encoders = "\n".join(f"[encoders.{name}]" for name in BIG_ENCODERS)
    return f"""[experiment]
name = "plan-1000"

[datasets.nih]
root = "{root}"

[tasks.nih6x200]
params = {{ per_class = 200 }}

{encoders}

[methods.linear]
[methods.mlp]
params = {{ lr = 1e-4, batch_size = 64 }}
[methods.zeroshot]
[methods.lora]
[methods.full]

[seeds]
repeats = {BIG_SEEDS}

[resources.extract]
gpus = 1

[resources.finetune]
gpus = 1
"""


def bench_seconds(args: list[str], workdir: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "BENCH_HOME": str(workdir)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done


def measure_demo(workdir: Path) -> dict:
    from benchmark.commands.demo import DEMO_FILE
    from benchmark.core.errors import BenchError

    runs = {}
    for name in ("first", "cached"):
        seconds, done = bench_seconds(["run", str(DEMO_FILE), "--no-live"], workdir)
        if done.returncode != 0:
            raise BenchError(f"bench run {DEMO_FILE} failed ({name} run): {done.stdout[-2000:]}{done.stderr[-2000:]}")
        runs[name] = seconds
    cached_jobs = sum(1 for line in done.stdout.splitlines() if line.strip().startswith("cached"))
    return {"first_s": runs["first"], "cached_s": runs["cached"], "ratio": runs["cached"] / runs["first"],
            "cached_jobs": cached_jobs}


def measure_planning(folder: Path, rounds: int) -> dict:
    from benchmark.experiments.parse import load_experiment
    from benchmark.experiments.plan import expand

    path = folder / "plan-1000.toml"
    path.write_text(big_experiment_text(folder / "nih"))
    times, jobs = [], 0
    for _ in range(max(rounds, 1)):
        started = time.perf_counter()
        jobs = len(expand(load_experiment(path)))
        times.append(time.perf_counter() - started)
    dry_seconds, done = bench_seconds(["run", str(path), "--dry-run"], folder / "workdir")
    return {"jobs": jobs, "plan_s": statistics.median(times), "dry_run_s": dry_seconds,
            "dry_run_ok": done.returncode == 0}


def run(args) -> int:
    from rich.table import Table

    from benchmark.ui import console

    scratch = Path(tempfile.mkdtemp(prefix="bench-perf-run-"))
    workdir = Path(args.keep) if args.keep else scratch / "demo-workdir"
    try:
        results = {"planning": measure_planning(scratch, args.rounds)}
        if not args.skip_demo:
            results["demo"] = measure_demo(workdir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        console.print_json(json.dumps(results))
        return 0
    table = Table(title="bench perf run: the cost of the plan itself")
    for column in ("measurement", "result", "goal"):
        table.add_column(column)
    planning = results["planning"]
    table.add_row(f"plan {planning['jobs']} jobs (read, check, expand; median of {args.rounds})",
                  f"{planning['plan_s']:.3f} s", "<= 2 s")
    table.add_row(f"bench run --dry-run of those {planning['jobs']} jobs (whole command)",
                  f"{planning['dry_run_s']:.2f} s" + ("" if planning["dry_run_ok"] else " (failed)"), "")
    if "demo" in results:
        demo = results["demo"]
        table.add_row("bench run experiments/demo.toml, first run", f"{demo['first_s']:.1f} s", "<= 180 s")
        table.add_row(f"the same again, fully cached ({demo['cached_jobs']} jobs cached)",
                      f"{demo['cached_s']:.2f} s = {demo['ratio']:.3f} x the first run", "<= 5 s")
    console.print(table)
    return 0
