"""`bench runs`: list prediction runs in the workdir."""

from __future__ import annotations


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "runs",
        parents=[common],
        help="list prediction runs in the workdir",
        description="List the prediction runs under <workdir>/runs/ (one Parquet file per run), oldest first.",
    )
    parser.add_argument("--task", default=None, help="only runs of this task")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from rich.table import Table

    from benchmark.console import console
    from benchmark.predictions import list_runs
    from benchmark.workdir import resolve_workdir

    workdir = resolve_workdir(args.workdir)
    runs = list_runs(workdir, task=args.task)
    if args.json:
        console.out(json.dumps([run.as_dict() for run in runs], indent=2), highlight=False)
        return 0
    if not runs:
        where = f"task {args.task!r} in " if args.task else ""
        console.print(f"no prediction runs for {where}{workdir / 'runs'}; make some with `bench fit-heads` or `bench finetune`")
        return 0
    table = Table(title=f"prediction runs in {workdir / 'runs'}")
    for column in ("run id", "task", "method", "encoder", "weights", "seed", "rows", "created"):
        table.add_column(column)
    for run in runs:
        if run.problem and not run.metadata:
            table.add_row(run.run_id, run.task, f"[red]{run.problem}[/]", "", "", "", "", "")
            continue
        table.add_row(run.run_id, run.task, run.method, run.encoder, run.weights_tag, str(run.seed), str(run.rows), run.created)
    console.print(table)
    return 0
