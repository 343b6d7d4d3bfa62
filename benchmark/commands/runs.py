"""`bench runs`: list prediction runs in the workdir."""

from __future__ import annotations

from benchmark.core.errors import BenchError


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

    from benchmark.core.runs import list_runs
    from benchmark.core.workdir import Workdir
    from benchmark.ui import console

    workdir = Workdir.resolve(args.workdir)
    runs = list_runs(workdir, task=args.task)
    if args.json:
        console.out(json.dumps([run.as_dict() for run in runs], indent=2), highlight=False)
        return 0
    if not runs:
        from benchmark.tasks import TASKS

        if args.task and args.task not in TASKS:
            raise BenchError(f"unknown task {args.task!r}; tasks are: {', '.join(TASKS)}")
        where = f"task {args.task!r} in " if args.task else ""
        console.print(f"no prediction runs for {where}{workdir.runs_dir}; make some with `bench fit-heads` or `bench finetune`")
        return 0
    table = Table(title=f"prediction runs in {workdir.runs_dir}")
    table.add_column("run id (UTC time-encoder-method-hash)", overflow="fold")
    if args.task is None:
        table.add_column("task", no_wrap=True)
    table.add_column("weights", overflow="fold")
    table.add_column("seed", no_wrap=True)
    table.add_column("rows", no_wrap=True)
    for run in runs:
        task = [run.task] if args.task is None else []
        if run.record is None:
            table.add_row(run.run_id, *task, f"[red]{run.problem}[/]", "", "")
            continue
        table.add_row(run.run_id, *task, run.record.weights_tag, str(run.record.seed), str(run.rows))
    console.print(table)
    return 0
