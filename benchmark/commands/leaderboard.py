"""`bench leaderboard`: fairness-ranked leaderboard over the runs of a task (or outside prediction files)."""

from __future__ import annotations

from benchmark.commands.options import non_negative_int


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        parents=[common],
        help="fairness-ranked leaderboard over the runs of a task",
        description=(
            "Evaluate every prediction run of a task (or outside files given with --predictions) on its test "
            "rows, with thresholds chosen on its val rows, and rank the runs by a fairness figure. Every "
            "figure carries a patient-clustered bootstrap CI; gaps are tested against 0 by permutation and "
            "marked * when significant after correction across the table. Figures: docs/FAIRNESS.md."
        ),
    )
    parser.add_argument("--task", default=None, help="task whose runs to rank (e.g. nih6x200); not needed with --predictions")
    parser.add_argument("--rank-by", default=None, metavar="FIGURE",
                        help="figure to rank by (default: worst_f1_gap = the worse of |f1_gap_sex| and |f1_gap_age|)")
    parser.add_argument("--model", default=None, help="only runs of this encoder")
    parser.add_argument("--method", default=None, help="only runs of this method (zeroshot, linear, mlp, lora, full, ...)")
    parser.add_argument("--experiment", default=None, metavar="NAME",
                        help="only the runs of this `bench run` experiment (those its plan made or reused)")
    parser.add_argument("--by-class", action="store_true", help="also show the per-disease breakdown (F1, AUC, TPR gaps)")
    parser.add_argument("--groups", default="sex,age,sex*age",
                        help="group attributes, comma-separated: sex, age, sex*age, and where the predictions carry them "
                             "race, insurance and intersections such as sex*race (default: sex,age,sex*age)")
    parser.add_argument("--age-bins", default="binary",
                        help="age groups: binary (<60 / >=60, default), decades, or cut points such as 40,60,80")
    parser.add_argument("--format", default="table", choices=("table", "md", "csv", "json"), help="output format")
    parser.add_argument("--n-boot", type=non_negative_int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--n-perm", type=non_negative_int, default=1000, help="permutations per gap test (default 1000; 0 = no tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    parser.add_argument("--threshold", default="f1", choices=("f1", "youden", "fixed"),
                        help="multi-label decision threshold chosen on val: F1-max (default), Youden, or fixed 0.5")
    parser.add_argument("--correction", default="holm", choices=("holm", "bh", "none"),
                        help="multiple-testing correction across the table (default holm)")
    parser.add_argument("--min-group-size", type=non_negative_int, default=30,
                        help="flag figures from groups with fewer test images (default 30)")
    parser.add_argument("--seed-exact", action="store_true",
                        help="reproduce the seed study's code slips (age 60 in both age groups of eqodds_age, unbinned ECE)")
    parser.add_argument("--predictions", action="append", default=[], metavar="NAME=FILE",
                        help="rank an outside prediction file (CSV or Parquet: image_id, patient_id, sex, age, split, "
                             "y_<class>, p_<class>); repeatable; no workdir needed")
    parser.set_defaults(func=run)


def run(args) -> int:
    from benchmark import leaderboard
    from benchmark.ui import console
    from benchmark.core.errors import BenchError

    if not args.task and not args.predictions:
        raise BenchError("give --task TASK to rank the runs in the workdir, or --predictions NAME=FILE")
    runs = leaderboard.load_external(args.predictions)
    from benchmark.core.workdir import Workdir

    if args.task:
        runs = leaderboard.load_task_runs(Workdir.resolve(args.workdir), args.task, model=args.model,
                                          method=args.method, experiment=args.experiment) + runs
    elif args.experiment:
        raise BenchError("--experiment selects runs in the workdir; give --task TASK with it")
    elif args.model or args.method:
        runs = [r for r in runs if (not args.model or r.encoder == args.model) and (not args.method or r.method == args.method)]
    rank_by = args.rank_by or leaderboard.DEFAULT_RANK
    ranked = leaderboard.build(
        runs,
        rank_by=rank_by,
        correction=args.correction,
        attributes=args.groups,
        age_bins=args.age_bins,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        seed=args.seed,
        threshold_rule=args.threshold,
        min_group_size=args.min_group_size,
        seed_exact=args.seed_exact,
    )
    title = f"leaderboard: {args.task}" if args.task else "leaderboard"
    text = leaderboard.render(ranked, rank_by=rank_by, fmt=args.format, by_class=args.by_class, title=title)
    if args.task:  # issue 17: the demographic-encoding probes of the runs' encoders
        from benchmark import leaderboard_probes

        text = leaderboard_probes.show(Workdir.resolve(args.workdir), ranked, fmt=args.format, text=text, console=console)
    if text is not None:
        if args.format == "json":
            console.print_json(text)
        else:
            console.print(text, highlight=False, markup=False, soft_wrap=True)
    return 0
