"""`bench data`: synthesise or check a dataset in the NIH ChestX-ray14 layout.

    bench data synth --out DIR [--n N] [--size PX] [--seed S] [--effects LIST|none] [--workers W]
    bench data check --dataset nih --root DIR [--json] [--val-fraction F] [--seed S] [--register NAME]
"""

from __future__ import annotations

import argparse
import json

from benchmark.commands.options import fraction, non_negative_int, positive_int

DATASETS = ("nih",)


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "data",
        parents=[common],
        help="synthesise or check a dataset in the NIH ChestX-ray14 layout",
        description="Synthesise or check a dataset in the NIH ChestX-ray14 layout.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _missing_action(parser))

    synth = actions.add_parser(
        "synth",
        parents=[common],
        help="write a synthetic dataset in the official NIH layout, with planted subgroup effects",
        description=(
            "Write a synthetic dataset in the official NIH ChestX-ray14 layout (Data_Entry_2017_v2020.csv, images/, "
            "train_val_list.txt, test_list.txt) with procedural chest phantoms and planted subgroup effects, "
            "recorded in synthetic_effects.json. Synthetic data: for testing software and fairness tools only."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("--out", required=True, help="folder to write (must be empty or absent)")
    synth.add_argument("--n", type=positive_int, default=1000, help="number of images")
    synth.add_argument("--size", type=positive_int, default=256, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dataset)")
    synth.add_argument(
        "--effects",
        default=None,
        help=(
            "planted effects, comma-separated KIND:GROUP=SIZE or weak_trace:GROUP:Finding=SIZE; kinds contrast, noise, "
            "label_noise, weak_trace; groups F, M, young (<60), old (>=60); 'none' for no effects "
            "(default: contrast:F=0.3,noise:F=0.04,label_noise:old=0.15)"
        ),
    )
    synth.add_argument(
        "--seed-class-share",
        type=float,
        default=0.3,
        help="share of images relabelled as single-label images of the seed study's 6 classes (0 = real marginals)",
    )
    synth.add_argument("--workers", type=non_negative_int, default=0, help="processes drawing images (0 = in this process)")
    synth.add_argument("--overwrite", action="store_true", help="replace a synthetic dataset already in --out")
    synth.set_defaults(func=run_synth)

    check = actions.add_parser(
        "check",
        parents=[common],
        help="validate a dataset folder and print a summary",
        description="Validate metadata, images and split lists of a dataset folder and print a summary per split.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    check.add_argument("--dataset", choices=DATASETS, default="nih", help="dataset layout")
    check.add_argument("--root", required=True, help="dataset folder (holding Data_Entry_2017*.csv and images)")
    check.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    check.add_argument("--val-fraction", type=fraction, default=0.1, help="share of train_val patients held out for validation")
    check.add_argument("--seed", type=int, default=0, help="seed of the patient-wise validation split")
    check.add_argument(
        "--allow-missing-images", action="store_true", help="drop (and count) rows whose image file is missing instead of failing"
    )
    check.add_argument("--register", metavar="NAME", default=None, help="also register the manifest in the workdir under NAME")
    check.set_defaults(func=run_check)


def _missing_action(parser) -> int:
    parser.print_help()
    return 2


def run_synth(args) -> int:
    from benchmark.datasets.synth import DEFAULT_EFFECTS, parse_effects, write_synthetic
    from benchmark.ui import RichProgress, console

    effects = parse_effects(DEFAULT_EFFECTS if args.effects is None else args.effects)
    out = write_synthetic(
        args.out,
        n=args.n,
        size=args.size,
        seed=args.seed,
        effects=effects,
        seed_class_share=args.seed_class_share,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=RichProgress(),
    )
    planted = ", ".join(effect.text for effect in effects) or "none"
    console.print(f"[green]wrote[/] {args.n} synthetic images ({args.size} px, seed {args.seed}) to {out}", highlight=False)
    console.print(f"planted effects: {planted} (see {out / 'synthetic_effects.json'})", highlight=False)
    console.print(f"next: bench data check --dataset nih --root {out}", highlight=False)
    return 0


def run_check(args) -> int:
    from benchmark.datasets.nih import load_nih
    from benchmark.datasets.summary import print_summary, summarise
    from benchmark.ui import console

    dataset = load_nih(
        args.root, val_fraction=args.val_fraction, seed=args.seed, allow_missing_images=args.allow_missing_images
    )
    summary = summarise(dataset.manifest, dataset.report)
    if args.register:
        from benchmark.core.manifest import manifest_digest
        from benchmark.core.workdir import Workdir
        from benchmark.datasets.registry import register_dataset

        folder = register_dataset(Workdir.resolve(getattr(args, "workdir", None)), args.register, dataset)
        summary["registered"] = {"name": args.register, "folder": str(folder), "digest": manifest_digest(dataset.manifest)}
    if args.json:
        console.print(json.dumps(summary, indent=2), markup=False, highlight=False, soft_wrap=True)
        return 0
    print_summary(summary, console, title=f"{args.dataset} at {dataset.root}")
    if args.register:
        console.print(f"registered as {args.register!r} in {summary['registered']['folder']}", highlight=False)
    return 0
