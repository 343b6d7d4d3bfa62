"""`bench prompt-sensitivity`: zero-shot with several prompt sets, and how much each figure moves between them.

For one encoder and task, a zero-shot run per prompt set (`benchmark.pipelines.promptsets`: the family's own,
the seed study's class names, CLIP's templates, CheXzero-style positive/negative pairs, or the user's files),
written like any run (an identical earlier run of the same set is replaced), then all evaluated by the fairness
engine with one resampling plan, and each figure's spread across the sets (`fairness.spread`): its value per
set, the range with a paired bootstrap CI, and the standard deviation. A default set that cannot be built for
this encoder (e.g. one-word prompts, which GLoRIA's text cleaning drops) is skipped with a note; a set the user
named is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT

FIGURES = ("macro_auc", "accuracy", "macro_f1", "worst_group_auc", "auc_gap_sex", "auc_gap_age", "eqodds_sex",
           "eqodds_age", "f1_gap_sex", "f1_gap_age", "ece")


@dataclass
class Sensitivity:
    runs: dict  # prompt set -> FitResult
    spreads: dict  # figure -> fairness.spread.Spread
    notes: list


def fit_prompt_sets(workdir, request, names, progress) -> tuple[dict, list[str]]:
    """{prompt set: FitResult} of one zero-shot run per set (`request`: a HeadsRequest for the encoder and task);
    a set with the same prompts as an earlier one (CLIP's templates for a CLIP-style family) is skipped."""
    import dataclasses

    from benchmark.pipelines.heads import fit_heads, prepare_inputs
    from benchmark.pipelines.promptsets import DEFAULT_SETS, prompt_text, prompt_triples

    inputs = prepare_inputs(workdir, request, embeddings=False)
    runs, notes, seen = {}, [], {}
    for name in dict.fromkeys(names):
        try:
            key = tuple(prompt_triples(inputs.store, name, classes=inputs.task.classes))
            if key in seen:
                notes.append(f"prompt set {name} skipped: the same prompts as {seen[key]}")
                continue
            prompt_text(workdir, inputs.store, name, classes=inputs.task.classes, progress=progress)  # embedded once
            (result,) = fit_heads(workdir, dataclasses.replace(request, heads=("zeroshot",), promptset=name, force=True))
        except BenchError as error:
            if name not in DEFAULT_SETS:
                raise
            notes.append(f"prompt set {name} skipped: {error}")
            continue
        seen[key], runs[name] = name, result
    return runs, notes


def prompt_sensitivity(workdir, request, names, *, n_boot: int = 1000, seed: int = 0, progress=SILENT) -> Sensitivity:
    from benchmark.core.runs import read_predictions
    from benchmark.leaderboard import RunInput, evaluate_run
    from fairness import ResamplingPlan
    from fairness.spread import spread_across

    runs, notes = fit_prompt_sets(workdir, request, names, progress)
    if len(runs) < 2:
        raise BenchError(f"only {len(runs)} prompt set(s) could be used ({', '.join(runs) or 'none'}); a spread needs two "
                         "or more: name more with --promptsets")
    plan, reports = ResamplingPlan(), {}
    for name, result in runs.items():
        frame, record = read_predictions(result.path)
        run = RunInput(name=result.run_id, method="zeroshot", encoder=request.model, frame=frame, record=record,
                       source=str(result.path))
        reports[name] = evaluate_run(run, n_boot=n_boot, n_perm=0, seed=seed, plan=plan)
    return Sensitivity(runs=runs, spreads=spread_across(reports, FIGURES), notes=notes)


def rows(sensitivity: Sensitivity) -> tuple[list[str], list[list[str]]]:
    names = list(sensitivity.runs)
    header = ["figure", *names, "range [95% CI]", "SD"]
    body = []
    for figure, spread in sensitivity.spreads.items():
        ci = spread.range.ci
        interval = "" if ci[0] != ci[0] else f" [{ci[0]:.3f}, {ci[1]:.3f}]"
        body.append([figure, *(f"{spread.values[name]:.3f}" for name in names), f"{spread.range.value:.3f}{interval}",
                     f"{spread.sd:.3f}"])
    return header, body
