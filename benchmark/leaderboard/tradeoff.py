"""`bench tradeoff`: each mitigation run beside the plain run of its kind — did the targeted gap shrink, and did
the worst-off group gain (levelling up) or the better-off group lose (levelling down)?

A mitigation run (its record's `details.mitigation` names the protected attribute, the plain method it is
compared with, the gap it targets and the per-group utility; written by `bench fit-heads --protect` from the heads
registry's `Mitigation` entries, and by `bench finetune --balance groups / --loss groupdro`) is paired with the
newest run of its plain method without mitigation that has the same encoder, weights, store, seed, task parameters
and datasets (and, for fine-tuning, the same hyperparameters), so both predict the same test images. Both are
evaluated by the fairness engine with one resampling plan (paired bootstrap replicates) and compared by
`fairness.tradeoff.compare_mitigation`.

`board_comparisons(board)` does the same for the runs of a built leaderboard with its evaluation options (the
report's trade-off section): a board report is reused where it was evaluated for the protected attribute alone
(`--groups sex`), so its bootstrap draws are the ones `bench tradeoff` makes; otherwise the pair is evaluated again
for that attribute (no permutations), since draws stratified by other attributes would differ from `bench tradeoff`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.errors import BenchError

PAIRING_FIELDS = ("encoder", "weights_digest", "store_identity", "seed", "task_params", "dataset", "test_dataset")


@dataclass
class Comparison:
    """One mitigation run, the plain run it is compared with, and the outcome."""

    mitigated: object  # benchmark.leaderboard.RunInput
    plain: object
    protect: str
    outcome: object  # fairness.tradeoff.MitigationOutcome

    def as_dict(self) -> dict:
        return {
            "run": self.mitigated.name, "method": self.mitigated.method, "encoder": self.mitigated.encoder,
            "plain_run": self.plain.name, "plain_method": self.plain.method, "protect": self.protect,
            "needs_attribute_at_test": bool(self.mitigated.record.details["mitigation"]["needs_attribute_at_test"]),
            **self.outcome.as_dict(),
        }


def mitigation_of(run) -> dict | None:
    """A run's `details.mitigation` (None for a run without a protected attribute, or from an older version)."""
    details = run.record.details.get("mitigation")
    return details if isinstance(details, dict) and "plain_method" in details else None


def is_plain_for(other, run, mitigation: dict) -> bool:
    """Whether `other` is a run of `run`'s plain method, without mitigation, on the same test images."""
    from benchmark.core.identity import plain as plain_data

    if other.method != mitigation["plain_method"] or other.record.details.get("mitigation"):
        return False
    if any(plain_data(getattr(other.record, name)) != plain_data(getattr(run.record, name)) for name in PAIRING_FIELDS):
        return False
    wanted = plain_data(mitigation.get("plain_hyperparameters") or {})
    return all(plain_data(other.record.hyperparameters.get(key)) == value for key, value in wanted.items())


def pair_runs(runs: list) -> tuple[list[tuple], list[str]]:
    """[(mitigated run, plain run)] and one note per mitigation run without a plain run to compare with."""
    pairs, notes = [], []
    for run in runs:
        mitigation = mitigation_of(run)
        if mitigation is None:
            continue
        candidates = [other for other in runs if is_plain_for(other, run, mitigation)]
        if not candidates:
            plain = mitigation["plain_method"]
            notes.append(f"{run.name} ({run.method}): no {plain} run of the same encoder, store, seed, task and "
                         f"settings to compare with; make one (`bench fit-heads --heads {plain}`, or `bench finetune` "
                         "without --balance / --loss groupdro)")
            continue
        pairs.append((run, max(candidates, key=lambda other: other.record.created)))
    return pairs, notes


def compare_runs(runs: list, *, n_boot: int = 1000, seed: int = 0, threshold_rule: str = "f1",
                 confidence: float = 0.95, reports: dict | None = None) -> tuple[list[Comparison], list[str]]:
    """Pair and evaluate the runs (see the module docstring); (comparisons, notes). `reports`: evaluations
    already made with these options, {(run name, attribute): FairnessReport}, reused instead of evaluating."""
    from benchmark.leaderboard import evaluate_run
    from fairness import ResamplingPlan
    from fairness.groups import parse_attribute_list
    from fairness.tradeoff import compare_mitigation

    pairs, notes = pair_runs(runs)
    plan, reports, comparisons = ResamplingPlan(), dict(reports or {}), []
    for mitigated, plain in pairs:
        protect = mitigated.record.details["mitigation"]["protect"]
        (attribute,) = parse_attribute_list([protect])
        for run in (plain, mitigated):
            key = (run.name, attribute)
            if key not in reports:
                reports[key] = evaluate_run(run, attributes=(attribute,), n_boot=n_boot, n_perm=0, seed=seed,
                                            plan=plan, threshold_rule=threshold_rule, confidence=confidence)
        mitigation = mitigation_of(mitigated)
        try:
            outcome = compare_mitigation(reports[(plain.name, attribute)], reports[(mitigated.name, attribute)],
                                         gap=mitigation["gap"].format(attr=attribute), attribute=attribute,
                                         utility=mitigation["utility"], confidence=confidence)
        except BenchError as error:
            notes.append(f"{mitigated.name} ({mitigated.method}) vs {plain.name}: {error}")
            continue
        comparisons.append(Comparison(mitigated, plain, protect, outcome))
    return comparisons, notes


def reusable_reports(board) -> dict:
    """{(run name, attribute): report} of the board's entries evaluated for one attribute alone, with the group
    definitions `bench tradeoff` uses (binary age, no reweighting, not the seed study's slips)."""
    out = {}
    for entry in board.entries:
        options = entry.report.options
        attributes = tuple(options.get("attributes", ()))
        if len(attributes) == 1 and options.get("age_bins") == "binary" and not options.get("seed_exact") \
                and not options.get("reweighted"):
            out[(entry.run.name, attributes[0])] = entry.report
    return out


def board_comparisons(board) -> tuple[list[Comparison], list[str]]:
    """`compare_runs` over a built leaderboard's runs with its resampling options (see the module docstring)."""
    options = board.options
    return compare_runs([entry.run for entry in board.entries], n_boot=options.get("n_boot", 1000),
                        seed=options.get("seed", 0), threshold_rule=options.get("threshold_rule", "f1"),
                        confidence=options.get("confidence", 0.95), reports=reusable_reports(board))


def _cell(figure) -> str:
    import numpy as np

    if figure is None or not np.isfinite(figure.value):
        return "n/a"
    if not np.isfinite(figure.ci[0]):
        return f"{figure.value:+.3f}"
    return f"{figure.value:+.3f} [{figure.ci[0]:+.3f}, {figure.ci[1]:+.3f}]"


def rows(comparisons: list[Comparison]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the trade-off table."""
    header = ["run", "protect", "gap", "plain", "mitigated", "gap change [95% CI]", "worst-group utility",
              "worst-group change", "best-group change", "verdict"]
    body = []
    for c in comparisons:
        o = c.outcome
        label = f"{c.mitigated.encoder} {c.mitigated.method} ({c.mitigated.name[-8:]})"
        if c.mitigated.record.details["mitigation"]["needs_attribute_at_test"]:
            label += " [attribute at test]"
        body.append([label, c.protect, o.gap, f"{o.gap_plain.value:.3f}", f"{o.gap_mitigated.value:.3f}",
                     _cell(o.gap_change), f"{o.utility}: {o.worst_plain.value:.3f} -> {o.worst_mitigated.value:.3f}",
                     _cell(o.worst_change), _cell(o.best_change), o.describe()])
    return header, body
