"""Runs to rank: prediction files from the workdir or named on the command line, and their evaluation.

Outside files are given as `[BLOCK:]NAME[@SEED]=FILE` (CSV or Parquet in the prediction schema): NAME names
the run; `@SEED` marks it as one seed of the configuration NAME (its repeats are grouped); `BLOCK:` puts it
in a block (a task or dataset) of its own, for a comparison across blocks. Each run's test rows are
evaluated by `fairness.evaluate` with thresholds chosen on its val rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.schema import label_column, probability_column

ERR_SPEC = "--predictions takes [BLOCK:]NAME[@SEED]=FILE (for example mymodel=preds.csv or nih:mymodel@1=run1.csv), got {spec!r}"
ERR_DUPLICATE = "two runs are named {name!r}; give each --predictions a different NAME (or NAME@SEED for seeds)"
ERR_NO_TEST = "{source}: no rows with split 'test'; the leaderboard evaluates the test rows"
ERR_NO_RUNS = (
    "no runs of task {task!r} in {root}{filters}; make some with `bench fit-heads` / `bench finetune`, "
    "or rank outside predictions with --predictions NAME=FILE"
)
ERR_CLASSES = (
    "these runs predict different classes and cannot be ranked in one table: {groups}. "
    "Rank each task separately (--task, or only the --predictions files of one task), or give each its "
    "block (--predictions BLOCK:NAME=FILE)"
)
NOTE_TEST_SETS = (
    "runs are evaluated on {n} different test sets ({sizes}); their figures are not paired and compare only "
    "roughly (e.g. nih6x200 runs made with different --per-class or --seed)"
)
_SPEC = re.compile(r"^(?:(?P<block>[^:=@]+):)?(?P<name>[^:=@]+)(?:@(?P<seed>-?\d+))?$")


@dataclass
class RunInput:
    """One run to rank: its name, method, encoder, prediction frame, run record, and for outside files the
    block and seed given on the command line."""

    name: str
    method: str
    encoder: str
    frame: object  # polars.DataFrame in the prediction schema
    record: object  # benchmark.core.runs.RunRecord
    source: str
    block: str = ""
    seed: int | None = None
    base_name: str = ""
    notes: list = field(default_factory=list)

    @property
    def external(self) -> bool:
        return self.record.is_external


def parse_prediction_spec(spec: str) -> tuple[str, Path, str, int | None]:
    """`[BLOCK:]NAME[@SEED]=FILE` -> (name, path, block, seed); the run's name is NAME or NAME@SEED."""
    label, sep, path = spec.partition("=")
    match = _SPEC.match(label.strip())
    if not sep or not path.strip() or not match or not match["name"].strip():
        raise BenchError(ERR_SPEC.format(spec=spec))
    name = match["name"].strip()
    seed = int(match["seed"]) if match["seed"] is not None else None
    full = f"{name}@{seed}" if seed is not None else name
    return full, Path(path.strip()), (match["block"] or "").strip(), seed


def load_external(specs) -> list[RunInput]:
    """Runs from `[BLOCK:]NAME[@SEED]=FILE` specs (CSV or Parquet in the prediction schema)."""
    from benchmark.core.runs import read_predictions

    runs, seen = [], set()
    for spec in specs:
        name, path, block, seed = parse_prediction_spec(spec)
        if (block, name) in seen:
            raise BenchError(ERR_DUPLICATE.format(name=name))
        seen.add((block, name))
        frame, record = read_predictions(path)
        if seed is not None:
            record.seed = seed
        runs.append(RunInput(name=name, method=record.method, encoder=record.encoder or "external", frame=frame,
                             record=record, source=str(path), block=block, seed=record.seed,
                             base_name=name.partition("@")[0]))
    return runs


def experiment_members(workdir, experiment: str, task: str) -> set[str] | None:
    """Run ids of `task` that `bench run` listed for `experiment` (its plan's runs, made or reused), or None
    when it listed none (then the runs recording that experiment are its runs)."""
    import json

    from benchmark.core.workdir import Workdir

    path = Workdir.of(workdir).experiment_runs_path(experiment, task)
    if not path.is_file():
        return None
    try:
        return {run["run_id"] for run in json.loads(path.read_text())["runs"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BenchError(f"{path}: cannot read the experiment's list of runs ({error}); run `bench run` again") from None


def _member(summary, experiment: str | None, members: set[str] | None) -> bool:
    if not experiment:
        return True
    return summary.run_id in members if members is not None else summary.record.experiment == experiment


def load_task_runs(workdir, task: str, *, model: str | None = None, method: str | None = None,
                   experiment: str | None = None) -> list[RunInput]:
    """Every readable run of a task in the workdir, filtered by encoder, method and `bench run` experiment
    (unreadable ones get a note)."""
    from benchmark.core.runs import list_runs, read_predictions
    from benchmark.core.workdir import Workdir

    members = experiment_members(workdir, experiment, task) if experiment else None
    runs, skipped = [], []
    for summary in list_runs(workdir, task=task):
        if summary.problem:
            skipped.append(f"skipping {summary.path}: {summary.problem}")
            continue
        if model and summary.record.encoder != model:
            continue
        if method and summary.record.method != method or not _member(summary, experiment, members):
            continue
        frame, record = read_predictions(summary.path)
        runs.append(RunInput(name=summary.run_id, method=record.method, encoder=record.encoder, frame=frame,
                             record=record, source=str(summary.path), block=task, seed=record.seed,
                             base_name=summary.run_id))
    if not runs:
        filters = "".join(f" with {k} {v!r}" for k, v in (("encoder", model), ("method", method),
                                                             ("experiment", experiment)) if v)
        raise BenchError(ERR_NO_RUNS.format(task=task, root=Workdir.of(workdir).runs_dir, filters=filters))
    if skipped:
        runs[0].notes.extend(skipped)
    return runs


def _arrays(frame, split: str, classes):
    import polars as pl

    rows = frame.filter(pl.col("split") == split)
    labels = rows.select([pl.col(label_column(c)).cast(pl.Float64) for c in classes])  # null (masked) -> NaN
    y = labels.to_numpy().astype(np.float64) if rows.height else None
    p = rows.select([probability_column(c) for c in classes]).to_numpy().astype(np.float64) if rows.height else None
    return rows, y, p


def _column(test, name: str):
    """A demographic column of the test rows, None when absent or entirely empty."""
    if name not in test.columns:
        return None
    values = test[name].to_list()
    return None if all(v is None for v in values) else values


def evaluate_run(run: RunInput, **options):
    """Evaluate one run's test rows with thresholds from its val rows (see `fairness.evaluate` for options)."""
    from benchmark.core.predictions import extra_group_values, infer_task_kind, prediction_classes
    from fairness import evaluate
    from fairness.thresholds import decision_thresholds

    classes = prediction_classes(run.frame)
    kind = infer_task_kind(run.frame, run.record.task_kind)
    test, y_test, p_test = _arrays(run.frame, "test", classes)
    if test.height == 0:
        raise BenchError(ERR_NO_TEST.format(source=run.source))
    _, y_val, p_val = _arrays(run.frame, "val", classes)
    image_ids = test["image_id"].to_list()
    patients = test["patient_id"].to_list() if "patient_id" in test.columns else [None] * test.height
    patients = [f"image:{i}" if pid is None else str(pid) for pid, i in zip(patients, image_ids)]
    options = decision_thresholds(run.record.chosen, classes, kind, y_val, p_val, options)  # constrained heads
    return evaluate(y_test=y_test, p_test=p_test, kind=kind, classes=classes, patient_ids=patients,
                    sex=_column(test, "sex"), age=_column(test, "age"), columns=extra_group_values(test),
                    y_val=y_val, p_val=p_val, **options)


def check_comparable(runs: list[RunInput]) -> list[str]:
    """Runs with different classes cannot share a table (BenchError); runs on different test sets can, with
    the note returned (their bootstrap replicates are not paired)."""
    from benchmark.core.predictions import prediction_classes

    by_classes: dict[tuple, list[str]] = {}
    test_sets: dict[frozenset, list[RunInput]] = {}
    for run in runs:
        by_classes.setdefault(tuple(prediction_classes(run.frame)), []).append(run.name)
        test_ids = run.frame.filter(run.frame["split"] == "test")["image_id"].to_list()
        test_sets.setdefault(frozenset(test_ids), []).append(run)
    if len(by_classes) > 1:
        groups = "; ".join(f"{', '.join(names)}: {', '.join(classes)}" for classes, names in by_classes.items())
        raise BenchError(ERR_CLASSES.format(groups=groups))
    if len(test_sets) > 1:
        sizes = ", ".join(f"{len(ids)} images: {', '.join(r.name for r in members)}" for ids, members in test_sets.items())
        return [NOTE_TEST_SETS.format(n=len(test_sets), sizes=sizes)]
    return []


def blocks(runs: list[RunInput]) -> dict[str, list[RunInput]]:
    """Runs split into blocks (task or dataset), in the order first seen: the block given on the command
    line, else the run's task (with its dataset when one task holds runs of several datasets). Runs with
    neither (outside files without BLOCK:) join the one other block when there is exactly one."""
    datasets: dict[str, set] = {}
    for run in runs:
        datasets.setdefault(run.block or run.record.task, set()).add(run.record.dataset)
    named = [label for label in datasets if label]
    out: dict[str, list[RunInput]] = {}
    for run in runs:
        label = run.block or run.record.task or (named[0] if len(named) == 1 else "")
        if len(datasets.get(label, ())) > 1 and run.record.dataset:
            label = f"{label}/{run.record.dataset}"
        out.setdefault(label, []).append(run)
    return out
