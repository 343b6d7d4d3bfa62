"""Where `bench report` gets its data document: the leaderboard's evaluation of the runs of a task, of outside
files, or of an experiment (whose leaderboard job already wrote the document: it is reused when no evaluation
option is changed, so the numbers are the experiment's own, evaluated once)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.core.errors import BenchError

ERR_NO_OUT = "give --out DIR, the folder to write the report into"
ERR_EXPERIMENT = ("no experiment {name!r} in {workdir} (no plan.json in {folder}); run `bench run EXPERIMENT.toml` "
                  "first, or give the experiment's folder")
ERR_TASKS = "experiment {name!r} has the tasks {tasks}; give --task with one of them"
REUSED = "using the evaluation of the leaderboard job of experiment {name!r} ({path})"


def _given(args) -> dict:
    from benchmark.core.schema import EVALUATION_DEFAULTS

    return {key: getattr(args, key) for key in EVALUATION_DEFAULTS if hasattr(args, key)}


def _build(runs, values: dict, *, workdir, argv, curves_run):
    from benchmark import leaderboard
    from benchmark.leaderboard.options import evaluation_options
    from benchmark.report.data import report_document

    blocks = leaderboard.blocks(runs)
    if len(blocks) > 1:
        raise BenchError(f"these runs belong to {len(blocks)} tasks or blocks ({', '.join(b or '-' for b in blocks)}); "
                         "a report covers one: give one --task (or only the --predictions of one task)")
    block, = blocks
    options = evaluation_options(values)
    board = leaderboard.build(runs, block=block, **options)
    return report_document(board, runs, workdir=workdir, command=argv, curves_run=curves_run, alpha=options["alpha"]), \
        board.notes


def document_for(args, *, argv) -> tuple[dict, Path, list]:
    """(the report data document, the output folder, notes to print)."""
    if args.experiment:
        return _experiment_document(args, argv)
    from benchmark import leaderboard

    if not args.out:
        raise BenchError(ERR_NO_OUT)
    runs = leaderboard.load_external(args.predictions)
    runs = [r for r in runs if (not args.model or r.encoder == args.model) and (not args.method or r.method == args.method)]
    workdir = None
    if args.task:
        from benchmark.core.workdir import Workdir

        workdir = Workdir.resolve(args.workdir)
        runs = leaderboard.load_task_runs(workdir, args.task, model=args.model, method=args.method) + runs
    document, notes = _build(runs, _given(args), workdir=workdir, argv=argv, curves_run=args.curves_run)
    return document, Path(args.out), notes


def experiment_folder(args):
    """The ExperimentFolder of --experiment: a name in the workdir, or the path of an experiment's folder."""
    from benchmark.core.workdir import Workdir
    from benchmark.experiments.folder import ExperimentFolder

    path = Path(args.experiment).expanduser()
    if path.is_dir() and (path / "plan.json").is_file():
        return ExperimentFolder(Workdir(path.resolve().parent.parent), path.resolve().name)
    workdir = Workdir.resolve(args.workdir)
    folder = ExperimentFolder(workdir, args.experiment)
    if not folder.plan_path.is_file():
        raise BenchError(ERR_EXPERIMENT.format(name=args.experiment, workdir=workdir, folder=folder.root))
    return folder


def _experiment_document(args, argv) -> tuple[dict, Path, list]:
    from benchmark import leaderboard
    from benchmark.report.provenance import command_line

    folder = experiment_folder(args)
    jobs = [job for job in folder.read_plan()["jobs"] if job["stage"] == "leaderboard"]
    tasks = {job["payload"]["task"]: job["payload"]["options"] for job in jobs}
    task = args.task or (next(iter(tasks)) if len(tasks) == 1 else None)
    if task not in tasks:
        raise BenchError(ERR_TASKS.format(name=folder.name, tasks=", ".join(tasks) or "none"))
    out = Path(args.out) if args.out else folder.root / "report" / task
    saved = folder.leaderboard_dir / f"{task}.report.json"
    given = _given(args)
    if saved.is_file() and not (given or args.model or args.method or args.predictions or args.curves_run):
        document = json.loads(saved.read_text())
        document["provenance"]["evaluated_by"] = document["provenance"].get("command")
        document["provenance"]["command"] = document["command"] = command_line(argv)
        return document, out, [REUSED.format(name=folder.name, path=saved)]
    runs = leaderboard.load_task_runs(folder.workdir, task, model=args.model, method=args.method,
                                      experiment=folder.name) + leaderboard.load_external(args.predictions)
    document, notes = _build(runs, {**tasks[task], **given}, workdir=folder.workdir, argv=argv,
                             curves_run=args.curves_run)
    return document, out, notes
