"""`bench leaderboard`: the utility- and fairness-aware leaderboard over the runs of a task (or of several tasks,
or of outside prediction files), and `--compare` of two runs."""

from __future__ import annotations

import argparse

from benchmark.core.schema import EVALUATION_DEFAULTS
from benchmark.commands.options import fraction, non_negative_int


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        parents=[common],
        help="utility- and fairness-aware leaderboard over the runs of a task",
        description=(
            "Evaluate every prediction run of a task (or outside files given with --predictions) on its test "
            "rows, with thresholds chosen on its val rows, and rank the runs: by default by worst-group utility "
            "(the task's utility in the worst sex x age cell), ties by overall utility; runs whose utility CI "
            "includes chance are listed below the ranked ones. Every figure carries a patient-clustered "
            "bootstrap CI; rank intervals and P(rank 1) come from the same replicates; gaps are tested against "
            "0 by permutation within label strata and marked * when significant after correction across the "
            "table. Figures and why the default ranking is what it is: docs/FAIRNESS.md."
        ),
    )
    parser.add_argument("--task", action="append", default=[],
                        help="task whose runs to rank (e.g. nih6x200); repeat it to rank several tasks and compare "
                             "configurations across them (Friedman / Nemenyi); not needed with --predictions")
    parser.add_argument("--model", default=None, help="only runs of this encoder")
    parser.add_argument("--method", default=None, help="only runs of this method (zeroshot, linear, mlp, lora, full, ...)")
    parser.add_argument("--by-class", action="store_true", help="also show the per-disease breakdown (F1, AUC, TPR gaps)")
    parser.add_argument("--experiment", default=None, metavar="NAME",
                        help="only the runs of this `bench run` experiment (those its plan made or reused)")
    parser.add_argument("--by-group", action="store_true",
                        help="also show each test set's groups: images, patients, prevalence and positives per class")
    parser.add_argument("--format", default="table", choices=("table", "md", "csv", "json"), help="output format")
    add_evaluation_arguments(parser)
    parser.add_argument("--compare", nargs="+", default=None, metavar="RUN",
                        help="print the paired bootstrap difference of every figure between RUN_A and RUN_B (or "
                             "RUN_A and the top-ranked run), with CI and p, instead of the table")
    parser.add_argument("--predictions", action="append", default=[], metavar="[BLOCK:]NAME[@SEED]=FILE",
                        help="rank an outside prediction file (CSV or Parquet: image_id, patient_id, sex, age, split, "
                             "y_<class>, p_<class>); repeatable; NAME@SEED marks seeds of one configuration, BLOCK: "
                             "a task or dataset of its own; no workdir needed")
    parser.set_defaults(func=run)


def add_evaluation_arguments(parser, *, defaults: bool = True) -> None:
    """The options of the leaderboard's one evaluation (shared by `bench leaderboard` and `bench report`).
    `defaults=False`: options not given stay out of the namespace, so the caller can take them from elsewhere
    (an experiment's [leaderboard] table)."""
    def default(name):
        return EVALUATION_DEFAULTS[name] if defaults else argparse.SUPPRESS

    parser.add_argument("--rank-by", default=default("rank_by"), metavar="FIGURE",
                        help="figure to rank by, its direction from the figures table (default: worst_group_utility; "
                             "dto, utility or any gap such as f1_gap_sex work too)")
    parser.add_argument("--groups", default=default("groups"),
                        help="group attributes, comma-separated: sex, age, sex*age, and where the predictions carry them "
                             "race, insurance and intersections such as sex*race (default: sex,age,sex*age)")
    parser.add_argument("--age-bins", default=default("age_bins"),
                        help="age groups: binary (<60 / >=60, default), decades, or cut points such as 40,60,80")
    parser.add_argument("--n-boot", type=non_negative_int, default=default("n_boot"), help="bootstrap replicates (default 1000)")
    parser.add_argument("--n-perm", type=non_negative_int, default=default("n_perm"), help="permutations per gap test (default 1000; 0 = no tests)")
    parser.add_argument("--seed", type=int, default=default("seed"), help="seed of the resampling (default 0)")
    parser.add_argument("--threshold", default=default("threshold"), choices=("f1", "youden", "fixed"),
                        help="multi-label decision threshold chosen on val: F1-max (default), Youden, or fixed 0.5")
    parser.add_argument("--correction", default=default("correction"), choices=("holm", "bh", "none"),
                        help="multiple-testing correction across the table (default holm)")
    parser.add_argument("--alpha", type=fraction, default=default("alpha"), help="significance level of the marks (default 0.05)")
    parser.add_argument("--min-group-size", type=non_negative_int, default=default("min_group_size"),
                        help="flag figures from groups with fewer test images (default 30)")
    parser.add_argument("--min-positives", type=non_negative_int, default=default("min_positives"),
                        help="flag figures from groups with fewer positives (or negatives) of a class (default 20)")
    parser.add_argument("--seed-exact", action="store_true", default=default("seed_exact"),
                        help="reproduce the seed study's code slips (age 60 in both age groups of eqodds_age, "
                             "unbinned mean |p - y| as ece and ece gaps)")
    parser.add_argument("--reweight-prevalence", action="store_true", default=default("reweight_prevalence"),
                        help="weight the test images so that every group has the test set's prevalence of every "
                             "class before computing the figures (a gap left is not case mix)")


def _runs(args) -> list:
    from benchmark import leaderboard

    runs = leaderboard.load_external(args.predictions)
    if args.model or args.method:
        runs = [r for r in runs if (not args.model or r.encoder == args.model) and (not args.method or r.method == args.method)]
    if args.task:
        from benchmark.core.workdir import Workdir

        workdir = Workdir.resolve(args.workdir)
        task_runs = [run for task in args.task
                     for run in leaderboard.load_task_runs(workdir, task, model=args.model, method=args.method,
                                                           experiment=args.experiment)]
        runs = task_runs + runs
    return runs


def run(args) -> int:
    from benchmark import leaderboard
    from benchmark.core.errors import BenchError
    from benchmark.ui import console, err_console

    if not args.task and not args.predictions:
        raise BenchError("give --task TASK to rank the runs in the workdir, or --predictions NAME=FILE")
    if args.experiment and not args.task:
        raise BenchError("--experiment selects runs in the workdir; give --task TASK with it")
    if args.compare is not None and len(args.compare) > 2:
        raise BenchError(f"--compare takes one or two runs, got {len(args.compare)}: {' '.join(args.compare)}")
    from benchmark.leaderboard.options import evaluation_options

    options = evaluation_options({key: getattr(args, key) for key in EVALUATION_DEFAULTS})
    boards = [leaderboard.build(runs, block=block, **options) for block, runs in leaderboard.blocks(_runs(args)).items()]
    for note in [note for board in boards for note in board.notes]:
        err_console.print(f"[yellow]note[/] {note}", highlight=False)
    if args.compare:
        board, names = _board_of(boards, args.compare)
        text = leaderboard.render_comparison(leaderboard.compare(board, names), fmt=args.format, alpha=args.alpha)
    else:
        across = leaderboard.across_blocks(boards, alpha=args.alpha) if len(boards) > 1 else None
        text = leaderboard.render(boards, fmt=args.format, by_class=args.by_class, by_group=args.by_group,
                                  title="leaderboard", alpha=args.alpha, across=across)
        if args.task:  # how much of each attribute the runs' encoders carry (`bench probe`)
            from benchmark.core.workdir import Workdir
            from benchmark.leaderboard.probes import show

            entries = [entry for board in boards for entry in board.entries]
            text = show(Workdir.resolve(args.workdir), entries, fmt=args.format, text=text, console=console)
    if text is not None:
        if args.format == "json":
            console.print_json(text)
        else:
            console.print(text, highlight=False, markup=False, soft_wrap=True)
    return 0


def _board_of(boards, names: list) -> tuple:
    """The board of the runs to compare and their names: BLOCK:RUN picks a block; else the first board that
    holds the first run (or the first board, which then names the error)."""
    block, sep, _ = names[0].partition(":")
    chosen = [board for board in boards if sep and board.block == block]
    if chosen:
        return chosen[0], [name.partition(":")[2] if name.startswith(block + ":") else name for name in names]
    for board in boards:
        if any(names[0] in e.run.name for e in board.entries):
            return board, names
    return boards[0], names
