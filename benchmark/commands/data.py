"""`bench data`: synthesise or check a dataset in the NIH ChestX-ray14, CheXpert or MIMIC-CXR-JPG layout.

    bench data synth [--layout nih|chexpert|mimic] --out DIR [--n N] [--size PX] [--seed S] [--effects LIST|none]
    bench data check --dataset nih|chexpert|mimic --root DIR [--json] [--register NAME] [dataset options]
"""

from __future__ import annotations

import argparse
import json

from benchmark.commands.options import non_negative_int, positive_int

LAYOUTS = ("nih", "chexpert", "mimic")


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "data",
        parents=[common],
        help="synthesise or check a dataset (NIH ChestX-ray14, CheXpert, MIMIC-CXR-JPG layouts)",
        description="Synthesise or check a dataset in the NIH ChestX-ray14, CheXpert or MIMIC-CXR-JPG layout.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _missing_action(parser))
    _register_synth(actions, common)
    _register_check(actions, common)


def _register_synth(actions, common) -> None:
    synth = actions.add_parser(
        "synth",
        parents=[common],
        help="write a synthetic dataset in an official layout, with planted subgroup effects",
        description=(
            "Write a synthetic dataset in the official NIH ChestX-ray14 layout (Data_Entry_2017_v2020.csv, images/, "
            "train_val_list.txt, test_list.txt), CheXpert layout (CheXpert-v1.0-small/train.csv, valid.csv, "
            "test_labels.csv, images, CHEXPERT DEMO.xlsx) or MIMIC-CXR-JPG + MIMIC-IV layout (mimic-cxr-2.0.0-*.csv.gz, "
            "files/, mimiciv/hosp/*.csv.gz) with procedural chest phantoms and planted subgroup effects, "
            "recorded in synthetic_effects.json. Synthetic data: for testing software and fairness tools only."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("--layout", choices=LAYOUTS, default="nih", help="which release's layout to write")
    synth.add_argument("--out", required=True, help="folder to write (must be empty or absent)")
    synth.add_argument("--n", type=positive_int, default=1000, help="number of images")
    synth.add_argument("--size", type=positive_int, default=256, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dataset)")
    synth.add_argument(
        "--effects",
        default=None,
        help=(
            "planted effects, comma-separated KIND:GROUP=SIZE or weak_trace:GROUP:Finding=SIZE; nih: kinds contrast, noise, "
            "label_noise, weak_trace, groups F, M, young (<60), old (>=60) (default contrast:F=0.3,noise:F=0.04,"
            "label_noise:old=0.15); chexpert, mimic: kinds underdiagnosis, contrast, noise, groups also White, Black, Asian, "
            "Hispanic, Medicaid, Medicare (default chexpert underdiagnosis:Black=0.3,contrast:F=0.2; mimic "
            "underdiagnosis:Black=0.3,underdiagnosis:Medicaid=0.2); 'none' for no effects"
        ),
    )
    synth.add_argument(
        "--seed-class-share",
        type=float,
        default=None,
        help="nih: share of images relabelled as single-label images of the seed study's 6 classes (default 0.3; 0 = real marginals)",
    )
    synth.add_argument("--workers", type=non_negative_int, default=0, help="processes drawing images (0 = in this process)")
    synth.add_argument("--overwrite", action="store_true", help="replace a synthetic dataset already in --out")
    synth.add_argument("--metadata-only", action="store_true", help="chexpert, mimic: every file but the images")
    synth.add_argument("--demographics", choices=("xlsx", "csv", "none"), default="xlsx",
                       help="chexpert: write CHEXPERT DEMO as .xlsx (as released), as its CSV export, or not at all")
    synth.add_argument("--no-test-set", action="store_true", help="chexpert: no test_labels.csv (valid.csv becomes the test split)")
    synth.add_argument("--mimic-iv-version", type=int, choices=(1, 2), default=2,
                       help="mimic: MIMIC-IV 2.x (hosp/, race) or 1.0 (core/, ethnicity)")
    synth.set_defaults(func=run_synth)


def _register_check(actions, common) -> None:
    check = actions.add_parser(
        "check",
        parents=[common],
        help="validate a dataset folder and print a summary",
        description=(
            "Validate the metadata, images and splits of a dataset folder (NIH, CheXpert or MIMIC-CXR-JPG, as "
            "released) and print a summary per split: demographics, race and insurance groups, findings, and every "
            "repair or mapping made. Bad input is named with its file, row and value."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from benchmark.commands.dataset_options import add_dataset_options

    add_dataset_options(check, seed_flag="--seed")
    check.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")
    check.add_argument("--register", metavar="NAME", default=None, help="also register the manifest in the workdir under NAME")
    check.set_defaults(func=run_check)


def _missing_action(parser) -> int:
    parser.print_help()
    return 2


def run_synth(args) -> int:
    from benchmark.ui import RichProgress, console

    if args.layout == "nih":
        out, planted = _synth_nih(args)
        check = f"bench data check --dataset nih --root {out}"
    else:
        out, planted, check = _synth_cxr(args, RichProgress())
    console.print(f"[green]wrote[/] {args.n} synthetic images ({args.layout} layout, {args.size} px, seed {args.seed}) "
                  f"to {out}" + (" (metadata only, no images)" if getattr(args, "metadata_only", False) else ""), highlight=False)
    console.print(f"planted effects: {planted} (see {out / 'synthetic_effects.json'})", highlight=False)
    console.print(f"next: {check}", highlight=False)
    return 0


def _synth_nih(args):
    from benchmark.core.errors import BenchError
    from benchmark.datasets.synth import DEFAULT_EFFECTS, parse_effects, write_synthetic
    from benchmark.ui import RichProgress

    if args.metadata_only or args.no_test_set or args.demographics != "xlsx" or args.mimic_iv_version != 2:
        raise BenchError("--metadata-only, --no-test-set, --demographics and --mimic-iv-version apply to --layout chexpert / mimic.")
    share = 0.3 if args.seed_class_share is None else args.seed_class_share
    effects = parse_effects(DEFAULT_EFFECTS if args.effects is None else args.effects)
    out = write_synthetic(
        args.out, n=args.n, size=args.size, seed=args.seed, effects=effects, seed_class_share=share,
        workers=args.workers, overwrite=args.overwrite, progress=RichProgress(),
    )
    return out, ", ".join(effect.text for effect in effects) or "none"


def _synth_cxr(args, progress):
    from benchmark.core.errors import BenchError
    from benchmark.datasets.synth import parse_effects
    from benchmark.datasets.synth_population import CxrEffect

    if args.seed_class_share is not None:
        raise BenchError("--seed-class-share applies to --layout nih only.")
    if args.layout == "chexpert":
        from benchmark.datasets.synth_chexpert import DEFAULT_EFFECTS, write_chexpert_synthetic

        effects = parse_effects(DEFAULT_EFFECTS if args.effects is None else args.effects, CxrEffect)
        out = write_chexpert_synthetic(args.out, n=args.n, size=args.size, seed=args.seed, effects=effects,
                                       test_set=not args.no_test_set, demographics=args.demographics,
                                       metadata_only=args.metadata_only, workers=args.workers, overwrite=args.overwrite,
                                       progress=progress)
        check = f"bench data check --dataset chexpert --root {out}"
    else:
        from benchmark.datasets.synth_mimic import DEFAULT_EFFECTS, MIMIC_IV, RELEASE, write_mimic_synthetic

        effects = parse_effects(DEFAULT_EFFECTS if args.effects is None else args.effects, CxrEffect)
        out = write_mimic_synthetic(args.out, n=args.n, size=args.size, seed=args.seed, effects=effects,
                                    mimic_iv_version=args.mimic_iv_version, metadata_only=args.metadata_only,
                                    workers=args.workers, overwrite=args.overwrite, progress=progress)
        check = f"bench data check --dataset mimic --root {out / RELEASE} --mimic-iv {out / MIMIC_IV}"
    if args.metadata_only:
        check += " --metadata-only"
    return out, ", ".join(effect.text for effect in effects) or "none", check


def run_check(args) -> int:
    from benchmark.commands.dataset_options import load_options
    from benchmark.datasets.adapters import load_dataset
    from benchmark.datasets.summary import print_summary, summarise
    from benchmark.ui import console

    dataset = load_dataset(args.dataset, args.root, load_options(args))
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
