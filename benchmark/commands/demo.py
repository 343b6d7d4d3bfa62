"""`bench demo`: the whole flow on the embedded synthetic default, with tiny random-initialised encoders.

It is `bench run experiments/demo.toml` (the options below change the file's values): a synthetic dataset in
the NIH layout with planted subgroup effects, extraction with three tiny encoders, the cheap heads, a short
LoRA fine-tune, the fairness-ranked leaderboard and the report (one HTML page with the figures and tables, whose
path it prints last). Nothing it prints is a medical finding: the images are procedural phantoms and the
encoders have random weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.commands.options import positive_int

DEMO_FILE = Path(__file__).resolve().parents[2] / "experiments" / "demo.toml"
DEMO_MODELS = ("tiny-clip", "tiny-medclip-vit", "tiny-gloria")
DEMO_TASK = "nih6x200"
DEMO_DEFAULTS = {"n": 2000, "size": 256, "seed": 0, "per_class": 50}
"""demo.toml's values; the synthetic default supports about 40 nih6x200 images per class per 1,000 images."""


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="the whole flow on the embedded synthetic default",
        description=(
            "Synthesise an NIH-layout dataset with planted subgroup effects, extract embeddings with tiny "
            "random-initialised encoders, fit the cheap heads, run a short LoRA fine-tune, print the "
            "fairness-ranked leaderboard and write the report (one HTML page): "
            f"`bench run {DEMO_FILE.name}`. Random weights and synthetic data: "
            "nothing here is a medical finding."
        ),
    )
    parser.add_argument("--n", type=positive_int, default=DEMO_DEFAULTS["n"], help="images in the synthetic dataset (default 2000)")
    parser.add_argument("--size", type=positive_int, default=DEMO_DEFAULTS["size"], help="image size in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=DEMO_DEFAULTS["seed"], help="seed for data, splits and heads (default 0)")
    parser.add_argument(
        "--per-class", type=positive_int, default=DEMO_DEFAULTS["per_class"],
        help="nih6x200 images per class (default 50; at most about 40 per 1,000 synthetic images)",
    )
    parser.add_argument("--jobs", "-j", type=positive_int, default=None, help="CPU jobs at a time (default: the number of cores)")
    parser.set_defaults(func=run)


def demo_overrides(*, n: int, size: int, seed: int, per_class: int) -> dict:
    """The changes the options make to demo.toml (a differently named experiment when any is not the default)."""
    given = {"n": n, "size": size, "seed": seed, "per_class": per_class}
    name = "demo" if given == DEMO_DEFAULTS else f"demo-n{n}-px{size}-seed{seed}-pc{per_class}"
    return {
        "experiment": {"name": name},
        "datasets": {"nih": {"n": n, "size": size, "seed": seed}},
        "tasks": {DEMO_TASK: {"task_seed": seed, "params": {"per_class": per_class}}},
        "seeds": {"list": [seed]},
    }


def run(args) -> int:
    import time

    from rich.panel import Panel

    from benchmark.commands.run import run_loaded
    from benchmark.core.errors import BenchError
    from benchmark.core.workdir import Workdir
    from benchmark.experiments.parse import load_experiment
    from benchmark.ui import console

    if not DEMO_FILE.is_file():
        raise BenchError(f"{DEMO_FILE} is missing: the demo runs the experiments/ folder of the source tree "
                         "(install with `pip install -e .`, as `make demo` does)")
    workdir = Workdir.resolve(args.workdir)
    experiment = load_experiment(DEMO_FILE, overrides=demo_overrides(n=args.n, size=args.size, seed=args.seed,
                                                                     per_class=args.per_class))
    console.print(
        Panel(
            "Synthetic phantoms with planted subgroup effects, encoders with [bold]random weights[/]. "
            "The figures below show that the tool works; they are [bold]not medical findings[/].\n"
            f"workdir: {workdir}\nplan: bench run {DEMO_FILE} (each job's log under "
            f"{workdir.experiment_dir(experiment.name)})",
            title="cxr-fairbench demo",
        )
    )
    started = time.perf_counter()
    options = argparse.Namespace(dry_run=False, executor="local", jobs=args.jobs, retry_failed=False,
                                 no_live=False, wait=False)
    code = run_loaded(experiment, workdir, options)
    if code == 0:
        console.print(f"demo finished in {time.perf_counter() - started:.0f} s; everything it wrote is under {workdir}")
        page = report_page(workdir, experiment.name)
        if page:
            console.print(f"the report (figures, tables, provenance; open it in a browser): {page.as_uri()}",
                          highlight=False, soft_wrap=True)
    return code


def report_page(workdir, experiment: str):
    """The report page the demo's plan wrote (its report job's output), or None."""
    from benchmark.experiments.folder import ExperimentFolder

    folder = ExperimentFolder(workdir, experiment)
    state = folder.state(f"report/{DEMO_TASK}")
    page = Path(state.outputs.get("html", "")) if state and state.outputs else None
    return page if page and page.is_file() else None
