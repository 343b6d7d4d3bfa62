"""`bench tradeoff`: each mitigation run beside the plain run of its kind (gap change, levelling up or down)."""

from __future__ import annotations

from benchmark.commands.options import non_negative_int


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "tradeoff",
        parents=[common],
        help="mitigation runs vs their plain runs: gap change, levelling up or down",
        description=(
            "Pair every mitigation run of a task (made with `bench fit-heads --protect ...`) with the plain run of its "
            "kind (same encoder, store, seed and task), evaluate both with shared patient-clustered bootstrap draws, "
            "and show the change of the gap the method targets and of the worst- and best-off group's utility, with "
            "95% CIs: levelling up (the worst group gained) or down (the better group lost). docs/mitigation.md."
        ),
    )
    parser.add_argument("--task", required=True, help="task whose runs to compare (e.g. nih14)")
    parser.add_argument("--model", default=None, help="only runs of this encoder")
    parser.add_argument("--n-boot", type=non_negative_int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    parser.add_argument("--threshold", default="f1", choices=("f1", "youden", "fixed"),
                        help="multi-label decision threshold chosen on val (decisions of constrained heads stay at 0.5)")
    parser.add_argument("--format", default="table", choices=("table", "md", "json"), help="output format")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from benchmark import leaderboard
    from benchmark.leaderboard import tradeoff
    from benchmark.core.errors import BenchError
    from benchmark.core.workdir import Workdir
    from benchmark.ui import console, err_console, print_table

    runs = leaderboard.load_task_runs(Workdir.resolve(args.workdir), args.task, model=args.model)
    comparisons, notes = tradeoff.compare_runs(runs, n_boot=args.n_boot, seed=args.seed, threshold_rule=args.threshold)
    for note in notes:
        err_console.print(f"[yellow]note[/] {note}", highlight=False)
    if not comparisons:
        raise BenchError(f"no mitigation run of task {args.task!r} has a plain run to compare with; fit both, e.g. "
                         f"`bench fit-heads --task {args.task} --heads linear,linear-reweight --protect sex`")
    if args.format == "json":
        console.print_json(json.dumps({"comparisons": [c.as_dict() for c in comparisons]}))
        return 0
    header, body = tradeoff.rows(comparisons)
    caption = (f"changes are mitigated - plain, paired patient-clustered bootstrap ({args.n_boot} replicates); "
               "a change counts when its 95% CI excludes 0")
    print_table(console, f"mitigation trade-offs: {args.task}", header, body, caption=caption,
                markdown=args.format == "md")
    return 0
