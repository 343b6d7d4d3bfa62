"""`bench demo`: the whole flow on the embedded synthetic default, with tiny random-initialised encoders.

Each stage is the real command a user would type; the demo only chains them. Nothing it prints is a medical
finding: the images are procedural phantoms and the encoders have random weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.commands.options import positive_int


DEMO_MODELS = ("tiny-clip", "tiny-medclip-vit", "tiny-gloria")
DEMO_TASK = "nih6x200"
DEMO_PER_CLASS = 50
"""nih6x200 per class in the demo: 300 images, 60 in test (the synthetic default supports about 40 per 1,000)."""
DEMO_HEADS = "linear,mlp,zeroshot"
DEMO_FINETUNE_MODEL = "tiny-clip"


@dataclass(frozen=True)
class Stage:
    title: str
    argv: list[str]


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="the whole flow on the embedded synthetic default",
        description=(
            "Synthesise an NIH-layout dataset with planted subgroup effects, check it, extract embeddings with "
            "tiny random-initialised encoders, fit the cheap heads, run a short LoRA fine-tune and print the "
            "fairness-ranked leaderboard. Random weights and synthetic data: nothing here is a medical finding."
        ),
    )
    parser.add_argument("--n", type=positive_int, default=2000, help="images in the synthetic dataset (default 2000)")
    parser.add_argument("--size", type=positive_int, default=256, help="image size in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, splits and heads (default 0)")
    parser.add_argument(
        "--per-class", type=positive_int, default=DEMO_PER_CLASS,
        help=f"nih6x200 images per class (default {DEMO_PER_CLASS}; at most about 40 per 1,000 synthetic images)",
    )
    parser.set_defaults(func=run)


def demo_stages(root: Path, *, n: int, size: int, seed: int, per_class: int = DEMO_PER_CLASS) -> list[Stage]:
    """The commands the demo runs, in order."""
    stages = [
        Stage("synthesise", ["data", "synth", "--out", str(root), "--n", str(n), "--size", str(size), "--seed", str(seed)]),
        Stage("check", ["data", "check", "--dataset", "nih", "--root", str(root)]),
    ]
    for model in DEMO_MODELS:
        stages.append(Stage(f"extract {model}", ["extract", "--model", model, "--dataset", "nih", "--root", str(root)]))
    for model in DEMO_MODELS:
        stages.append(
            Stage(
                f"fit-heads {model}",
                ["fit-heads", "--model", model, "--task", DEMO_TASK, "--per-class", str(per_class),
                 "--heads", DEMO_HEADS, "--seed", str(seed)],
            )
        )
    stages.append(
        Stage(
            f"finetune {DEMO_FINETUNE_MODEL} (LoRA)",
            ["finetune", "--model", DEMO_FINETUNE_MODEL, "--task", DEMO_TASK, "--per-class", str(per_class),
             "--method", "lora", "--epochs", "2", "--batch-size", "16", "--seed", str(seed)],
        )
    )
    stages.append(Stage("leaderboard", ["leaderboard", "--task", DEMO_TASK, "--n-boot", "200"]))
    return stages


def run(args) -> int:
    from rich.panel import Panel
    from rich.rule import Rule

    from benchmark import cli
    from benchmark.ui import console
    from benchmark.core.workdir import Workdir

    workdir = Workdir.resolve(args.workdir)
    root = workdir.demo_dir / f"nih-synthetic-n{args.n}-px{args.size}-seed{args.seed}"
    console.print(
        Panel(
            "Synthetic phantoms with planted subgroup effects, encoders with [bold]random weights[/]. "
            "The figures below show that the tool works; they are [bold]not medical findings[/].\n"
            f"workdir: {workdir}",
            title="cxr-fairbench demo",
        )
    )
    common = ["--workdir", str(workdir)]
    started = time.perf_counter()
    for stage in demo_stages(root, n=args.n, size=args.size, seed=args.seed, per_class=args.per_class):
        console.print(Rule(f"[bold]{stage.title}[/]  ·  bench {' '.join(stage.argv)}", align="left"))
        code = cli.dispatch(common + stage.argv, raise_errors=True)
        if code:
            console.print(f"[red]stage '{stage.title}' failed with exit code {code}[/]")
            return code
    elapsed = time.perf_counter() - started
    console.print(Rule())
    console.print(f"demo finished in {elapsed:.0f} s; everything it wrote is under {workdir}")
    return 0
