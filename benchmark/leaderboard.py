"""The fairness-ranked leaderboard: read runs (workdir or outside files), evaluate each, rank, render.

Runs come from the workdir (`benchmark.core.runs.list_runs`) or from files named on the command line
(`NAME=FILE`, CSV or Parquet in the prediction schema; no workdir needed). Each run's test rows are
evaluated by `fairness.evaluate` with thresholds chosen on its val rows. All runs of one table share the
seed, so runs on the same test set share the same patient draws (a paired comparison is then possible).
The permutation p-values of the gap figures shown in the table (every run x every gap column, the ranking
figure included) form one family and are corrected together (Holm by default); a gap is marked
significant when its adjusted p-value is below `alpha`. Other figures carry `p_adj: null` here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.predictions import extra_group_values, unknown_group_values
from benchmark.core.schema import label_column, probability_column

DEFAULT_RANK = "worst_f1_gap"
SHOWN_FIGURES = ("accuracy", "macro_f1", "macro_auc", "f1_gap_sex", "f1_gap_age", "eqodds_sex", "eqodds_age",
                 "auc_gap_sex", "auc_gap_age", "ece_gap_sex", "ece_gap_age")
TABLE_FIGURES = SHOWN_FIGURES[:5]
"""The rich table shows fewer columns so that it fits a terminal; md, csv and json show them all."""
FORMATS = ("table", "md", "csv", "json")

ERR_SPEC = "--predictions takes NAME=FILE (for example mymodel=preds.csv), got {spec!r}"
ERR_DUPLICATE = "two runs are named {name!r}; give each --predictions a different NAME"
ERR_NO_TEST = "{source}: no rows with split 'test'; the leaderboard evaluates the test rows"
ERR_NO_RUNS = (
    "no runs of task {task!r} in {root}{filters}; make some with `bench fit-heads` / `bench finetune`, "
    "or rank outside predictions with --predictions NAME=FILE"
)
ERR_RANK = "unknown --rank-by figure {name!r}; figures of these runs: {known}"
ERR_DEFAULT_RANK = (
    "the default ranking figure {name!r} needs sex and age values and both groups with binary age bins "
    "(--groups sex,age and --age-bins binary); here rank by another figure with --rank-by FIGURE, one of: {known}"
)
ERR_FORMAT = "unknown format {fmt!r}; choose one of: " + ", ".join(FORMATS)
ERR_CLASSES = (
    "these runs predict different classes and cannot be ranked in one table: {groups}. "
    "Rank each task separately (--task, or only the --predictions files of one task)"
)
NOTE_TEST_SETS = (
    "runs are evaluated on {n} different test sets ({sizes}); their figures are not paired and compare only "
    "roughly (e.g. nih6x200 runs made with different --per-class or --seed)"
)


@dataclass
class RunInput:
    """One run to rank: its name, method, encoder, prediction frame and run record."""

    name: str
    method: str
    encoder: str
    frame: object  # polars.DataFrame in the prediction schema
    record: object  # benchmark.core.runs.RunRecord
    source: str


@dataclass
class RankedRun:
    run: RunInput
    report: object  # fairness.FairnessReport


def parse_prediction_spec(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise BenchError(ERR_SPEC.format(spec=spec))
    return name.strip(), Path(path.strip())


def load_external(specs) -> list[RunInput]:
    """Runs from `NAME=FILE` specs (CSV or Parquet in the prediction schema)."""
    from benchmark.core.runs import read_predictions

    runs, seen = [], set()
    for spec in specs:
        name, path = parse_prediction_spec(spec)
        if name in seen:
            raise BenchError(ERR_DUPLICATE.format(name=name))
        seen.add(name)
        frame, record = read_predictions(path)
        runs.append(RunInput(name=name, method=record.method, encoder=record.encoder or "external", frame=frame,
                             record=record, source=str(path)))
    return runs


def experiment_members(workdir, experiment: str, task: str) -> set[str] | None:
    """Run ids of `task` that `bench run` listed for `experiment` (its plan's runs, made or reused), or None
    when it listed none (then the runs recording that experiment are its runs)."""
    from benchmark.core.workdir import Workdir

    path = Workdir.of(workdir).experiment_runs_path(experiment, task)
    if not path.is_file():
        return None
    try:
        return {run["run_id"] for run in json.loads(path.read_text())["runs"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BenchError(f"{path}: cannot read the experiment's list of runs ({error}); run `bench run` again") from None


def load_task_runs(workdir, task: str, *, model: str | None = None, method: str | None = None,
                   experiment: str | None = None) -> list[RunInput]:
    """Every readable run of a task in the workdir, filtered by encoder, method and experiment."""
    from benchmark.core.runs import list_runs, read_predictions
    from benchmark.core.workdir import Workdir
    from benchmark.ui import err_console

    members = experiment_members(workdir, experiment, task) if experiment else None
    runs = []
    for summary in list_runs(workdir, task=task):
        if summary.problem:
            err_console.print(f"[yellow]skipping[/] {summary.path}: {summary.problem}", highlight=False)
            continue
        if model and summary.record.encoder != model:
            continue
        if method and summary.record.method != method:
            continue
        if experiment and (summary.run_id not in members if members is not None
                           else summary.record.experiment != experiment):
            continue
        frame, record = read_predictions(summary.path)
        runs.append(RunInput(name=summary.run_id, method=record.method, encoder=record.encoder, frame=frame,
                             record=record, source=str(summary.path)))
    if not runs:
        filters = "".join(f" with {k} {v!r}" for k, v in (("encoder", model), ("method", method),
                                                             ("experiment", experiment)) if v)
        raise BenchError(ERR_NO_RUNS.format(task=task, root=Workdir.of(workdir).runs_dir, filters=filters))
    return runs


def _arrays(frame, split: str, classes):
    import polars as pl

    rows = frame.filter(pl.col("split") == split)
    y = rows.select([label_column(c) for c in classes]).to_numpy().astype(np.int8) if rows.height else None
    p = rows.select([probability_column(c) for c in classes]).to_numpy().astype(np.float64) if rows.height else None
    return rows, y, p


def evaluate_run(run: RunInput, **options):
    """Evaluate one run's test rows with thresholds from its val rows (see `fairness.evaluate` for options)."""
    from benchmark.core.predictions import infer_task_kind, prediction_classes
    from fairness import evaluate

    classes = prediction_classes(run.frame)
    kind = infer_task_kind(run.frame, run.record.task_kind)
    test, y_test, p_test = _arrays(run.frame, "test", classes)
    if test.height == 0:
        raise BenchError(ERR_NO_TEST.format(source=run.source))
    _, y_val, p_val = _arrays(run.frame, "val", classes)
    image_ids = test["image_id"].to_list()
    patients = test["patient_id"].to_list() if "patient_id" in test.columns else [None] * test.height
    patients = [f"image:{i}" if pid is None else str(pid) for pid, i in zip(patients, image_ids)]
    sex = test["sex"].to_list() if "sex" in test.columns else None
    age = test["age"].to_list() if "age" in test.columns else None
    if sex is not None and all(v is None for v in sex):
        sex = None
    if age is not None and all(v is None for v in age):
        age = None
    from fairness.thresholds import decision_thresholds

    options = decision_thresholds(run.record.chosen, classes, kind, y_val, p_val, options)  # issue 17
    return evaluate(y_test=y_test, p_test=p_test, kind=kind, classes=classes, patient_ids=patients, sex=sex,
                    age=age, columns=extra_group_values(test), y_val=y_val, p_val=p_val, **options)


def rank_key(name: str):
    """Sort key for a figure, in the direction the figures table gives (undefined values last)."""
    from fairness.registry import sort_key

    def key(ranked: RankedRun):
        figure = ranked.report.figures.get(name)
        value = figure.value if figure is not None else float("nan")
        if not np.isfinite(value):
            return (1, 0.0)
        return (0, sort_key(name, value))

    return key


def check_comparable(runs: list[RunInput]) -> None:
    """Runs with different classes cannot share a table (BenchError); runs on different test sets can, with a
    note (their bootstrap replicates are not paired)."""
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
        from benchmark.ui import err_console

        sizes = ", ".join(f"{len(ids)} images: {', '.join(r.name for r in members)}" for ids, members in test_sets.items())
        err_console.print(f"[yellow]note[/] {NOTE_TEST_SETS.format(n=len(test_sets), sizes=sizes)}", highlight=False)


def build(runs: list[RunInput], *, rank_by: str = DEFAULT_RANK, correction: str = "holm", **options) -> list[RankedRun]:
    """Evaluate every run, correct the gap p-values of the whole table together, and rank."""
    from fairness.multitest import adjust_p_values

    check_comparable(runs)

    from fairness import ResamplingPlan

    plan = ResamplingPlan()  # runs on the same test set share their bootstrap draws (paired replicates)
    tested = set(SHOWN_FIGURES) | {rank_by}  # the table's family; other gaps need no permutations here
    ranked = [RankedRun(run, evaluate_run(run, correction=correction, plan=plan, tested_figures=tested, **options))
              for run in runs]
    for r in ranked:
        missing = r.report.options.get("attributes_without_values")
        if missing:
            from benchmark.ui import err_console

            err_console.print(f"[yellow]note[/] {r.run.source}: no values for {', '.join(missing)} "
                              f"(add sex / age columns); those groups and their figures are left out", highlight=False)
        notes = unknown_group_values(r.run.frame, r.report.options.get("attributes", ()))
        if notes:  # race / insurance unknown for some test images: reported, never a group
            from benchmark.ui import err_console

            err_console.print("\n".join(f"[yellow]note[/] {r.run.name}: {note}" for note in notes), highlight=False)
    known = sorted({name for r in ranked for name in r.report.figures})
    if rank_by not in known:
        message = ERR_DEFAULT_RANK if rank_by == DEFAULT_RANK else ERR_RANK
        raise BenchError(message.format(name=rank_by, known=", ".join(known)))
    family = set(columns_for(ranked, rank_by))
    tests = [(r, name) for r in ranked for name, fig in r.report.figures.items()
             if fig.p_value is not None and name in family]
    adjusted = adjust_p_values([fig_p(r, name) for r, name in tests], method=correction)
    for r in ranked:
        for fig in r.report.figures.values():
            fig.p_adj = None
    for (r, name), p_adj in zip(tests, adjusted):
        r.report.figures[name].p_adj = float(p_adj) if np.isfinite(p_adj) else None
    ranked.sort(key=rank_key(rank_by))
    return ranked


def fig_p(ranked: RankedRun, name: str) -> float:
    value = ranked.report.figures[name].p_value
    return float("nan") if value is None else value


def _groups_dict(report) -> dict:
    groups: dict = {}
    for row in report.as_dict()["groups"]:
        groups.setdefault(row["attribute"], {})[row["level"]] = {
            "count": row["count"],
            "positives": row["positives"],
            "flag": row["flag"] or None,
            "metrics": {name: {k: v for k, v in fig.items() if k in ("value", "ci")}
                        for name, fig in row["metrics"].items()},
        }
    return groups


def to_json(ranked: list[RankedRun]) -> dict:
    """The JSON document: {"runs": [{name, method, encoder, n_test, figures, groups, flags, thresholds}],
    "figures": {name: {kind, better, attribute, formula, source, tested}}} (from the figures table)."""
    from fairness.registry import definition

    out = []
    for r in ranked:
        report = r.report
        figures = {name: {"value": d["value"], "ci": d["ci"], "p_adj": d["p_adj"]}
                   for name, d in ((n, f.as_dict()) for n, f in report.figures.items())}
        out.append({
            "name": r.run.name,
            "method": r.run.method,
            "encoder": r.run.encoder,
            "dataset": r.run.record.dataset, "test_dataset": r.run.record.test_dataset or r.run.record.dataset,
            "n_test": report.n_test,
            "figures": figures,
            "groups": _groups_dict(report),
            "flags": {name: fig.flag for name, fig in report.figures.items() if fig.flag},
            "thresholds": report.thresholds.as_dict(),
        })
    names = sorted({name for r in ranked for name in r.report.figures})
    return {"runs": out, "figures": {name: definition(name) for name in names}}


def _short(value: float) -> str:
    """0.123 -> ".123", -0.045 -> "-.045" (for narrow terminal columns)."""
    return f"{value:.3f}".replace("0.", ".", 1) if abs(value) < 1 else f"{value:.3f}"


def format_figure(figure, *, alpha: float = 0.05, compact: bool = False) -> str:
    """ "value [lo, hi]" plus " *" when significant after correction and " !" when flagged.

    `compact`: the CI on a second line, without leading zeros."""
    if figure is None or not np.isfinite(figure.value):
        return "n/a"
    text = f"{figure.value:.3f}"
    if np.isfinite(figure.ci[0]) and compact:
        text += f"\n[{_short(figure.ci[0])},{_short(figure.ci[1])}]"
    elif np.isfinite(figure.ci[0]):
        text += f" [{figure.ci[0]:.3f}, {figure.ci[1]:.3f}]"
    if figure.p_adj is not None and figure.p_adj < alpha:
        text += " *"
    if figure.flag:
        text += " !"
    return text


def columns_for(ranked: list[RankedRun], rank_by: str) -> list[str]:
    present = {name for r in ranked for name in r.report.figures}
    shown = [rank_by] + [name for name in SHOWN_FIGURES if name != rank_by and name in present]
    return shown


def short_label(run: RunInput) -> str:
    """A name that fits a terminal: outside files keep their NAME, workdir runs show encoder and method."""
    if run.method == "external" or not run.encoder:
        return run.name
    shift = f" {run.record.dataset}->{run.record.test_dataset}" if run.record.test_dataset else ""  # out of distribution
    return f"{run.encoder} {run.method}{shift} ({run.name[-8:]})"


def rows(ranked: list[RankedRun], rank_by: str, *, alpha: float = 0.05, compact: bool = False) -> tuple[list, list]:
    """Header and rows of the main table; `compact` (the terminal table) has fewer columns, CIs on a 2nd line."""
    figures = columns_for(ranked, rank_by)
    if compact:
        figures = [name for name in figures if name == rank_by or name in TABLE_FIGURES]
        header = ["#", "run", "n test"] + figures
    else:
        header = ["rank", "name", "method", "encoder", "n_test"] + figures
    body = []
    for position, r in enumerate(ranked, start=1):
        if compact:
            cells = [str(position), short_label(r.run), str(r.report.n_test)]
        else:
            cells = [str(position), r.run.name, r.run.method, r.run.encoder, str(r.report.n_test)]
        for name in figures:
            cells.append(format_figure(r.report.figures.get(name), alpha=alpha, compact=compact))
        body.append(cells)
    return header, body


def class_rows(ranked: list[RankedRun]) -> tuple[list, list]:
    """Per-disease breakdown: F1, AUC and the TPR gap of each attribute (CheXclusion), per run and class."""
    names = sorted({name for r in ranked for name in r.report.by_class})
    shown = ["f1", "auc"] + [n for n in names if n.startswith("tpr_gap_")]
    header = ["name", "class"] + shown
    body = []
    for r in ranked:
        for cls in r.report.classes:
            cells = [r.run.name, cls]
            for name in shown:
                per = r.report.by_class.get(name, {})
                cells.append(format_figure(per.get(cls)))
            body.append(cells)
    return header, body


CSV_COLUMNS = ("rank", "name", "method", "encoder", "n_test", "figure", "class", "value", "ci_low", "ci_high",
               "p_adj", "flag")


def tidy_csv(ranked: list[RankedRun], *, by_class: bool = False) -> str:
    """One row per run and figure (and per class with `by_class`), numbers in their own columns, so that a
    spreadsheet, pandas or R reads them as numbers: the columns of `CSV_COLUMNS`; `class` is empty for
    figures over all classes; empty cells where a value is undefined."""
    def number(x) -> str:
        return "" if x is None or not np.isfinite(x) else repr(float(x))

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for position, r in enumerate(ranked, start=1):
        run = [position, r.run.name, r.run.method, r.run.encoder, r.report.n_test]
        items = [(name, "", figure) for name, figure in r.report.figures.items()]
        if by_class:
            items += [(name, cls, figure) for name, per in r.report.by_class.items() for cls, figure in per.items()]
        for name, cls, figure in items:
            writer.writerow(run + [name, cls, number(figure.value), number(figure.ci[0]), number(figure.ci[1]),
                                   number(figure.p_adj), figure.flag])
    return buffer.getvalue()


def render(ranked: list[RankedRun], *, rank_by: str, fmt: str = "table", by_class: bool = False, title: str = "",
           alpha: float = 0.05, console=None) -> str | None:
    """Return the leaderboard as text (md, csv, json) or print it as a rich table (returns None) on `console`
    (default: the terminal's)."""
    if fmt not in FORMATS:
        raise BenchError(ERR_FORMAT.format(fmt=fmt))
    if fmt == "json":
        return json.dumps(to_json(ranked), indent=2)
    header, body = rows(ranked, rank_by, alpha=alpha, compact=fmt == "table")
    tables = [(title or "leaderboard", header, body)]
    if by_class:
        tables.append(("per class", *class_rows(ranked)))
    if fmt == "csv":
        return tidy_csv(ranked, by_class=by_class)
    if fmt == "md":
        parts = []
        for name, head, lines in tables:
            parts.append(f"### {name}\n")
            parts.append("| " + " | ".join(head) + " |")
            parts.append("|" + "---|" * len(head))
            parts.extend("| " + " | ".join(line) + " |" for line in lines)
            parts.append("")
        parts.append(legend(ranked, rank_by, alpha))
        return "\n".join(parts)
    from rich.table import Table

    if console is None:
        from benchmark.ui import console

    for name, head, lines in tables:
        table = Table(title=name, caption=legend(ranked, rank_by, alpha) if name == tables[0][0] else None)
        for column in head:
            table.add_column(column, overflow="fold")
        for line in lines:
            table.add_row(*line)
        console.print(table)
    return None


def legend(ranked: list[RankedRun], rank_by: str, alpha: float) -> str:
    options = ranked[0].report.options if ranked else {}
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}.get(options.get("correction"), "")
    return (
        f"ranked by {rank_by}; value [95% CI, patient-clustered bootstrap, {options.get('n_boot')} replicates]; "
        f"* gap != 0 after {correction} correction across the table (permutation test, alpha {alpha}); "
        f"! figure from a small or incomplete group (see --format json)"
    )
