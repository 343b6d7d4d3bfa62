"""The dataset options shared by `bench data check` and `bench extract` (how a release is read)."""

from __future__ import annotations

from benchmark.commands.options import fraction

DATASET_HELP = "dataset layout: nih, chexpert or mimic"


def add_dataset_options(parser, *, seed_flag: str) -> None:
    """--dataset, --root and the adapters' options (each refused by the adapters that do not use it)."""
    from benchmark.datasets.adapters import ADAPTERS

    parser.add_argument("--dataset", choices=tuple(ADAPTERS), default="nih", help=DATASET_HELP + " (default nih)")
    parser.add_argument("--root", required=True, help="the dataset folder, as the release is laid out (see docs/datasets.md)")
    parser.add_argument("--val-fraction", type=fraction, default=0.1,
                        help="nih, chexpert: share of training patients held out for validation where the release has no val split (default 0.1)")
    parser.add_argument(seed_flag, dest="split_seed", type=int, default=0, help="seed of the patient-wise validation split (default 0)")
    parser.add_argument("--allow-missing-images", action="store_true",
                        help="drop (and count) rows whose image file is missing instead of failing")
    parser.add_argument("--metadata-only", action="store_true",
                        help="chexpert, mimic: check the metadata without looking for image files")
    parser.add_argument("--uncertain", choices=("zeros", "ones", "ignore"), default=None,
                        help="chexpert, mimic: uncertain (-1.0) labels as 0, as 1, or masked (left out of that class's "
                             "loss and metrics); default zeros")
    parser.add_argument("--views", choices=("frontal", "all"), default=None,
                        help="chexpert, mimic: frontal (AP/PA) images only (default) or all views")
    parser.add_argument("--labeler", choices=("chexpert", "negbio"), default=None,
                        help="mimic: the label file, mimic-cxr-2.0.0-chexpert or -negbio (default chexpert)")
    parser.add_argument("--mimic-iv", default=None, metavar="DIR",
                        help="mimic: the MIMIC-IV folder (hosp/ or core/ with patients and admissions) for sex, age, race, insurance")
    parser.add_argument("--race-map", default=None, metavar="FILE",
                        help="chexpert, mimic: a JSON file adding to or replacing entries of the race / insurance map")


def load_options(args):
    """The `LoadOptions` of parsed arguments (options not given keep the adapters' defaults)."""
    from benchmark.datasets.common import LoadOptions

    given = {"uncertain": args.uncertain, "views": args.views, "labeler": args.labeler, "mimic_iv": args.mimic_iv,
             "race_map": args.race_map}
    return LoadOptions(val_fraction=args.val_fraction, seed=args.split_seed, allow_missing_images=args.allow_missing_images,
                       metadata_only=args.metadata_only, **{key: value for key, value in given.items() if value is not None})
