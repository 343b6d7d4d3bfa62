"""Each mitigation head shrinks the gap that a planted subgroup effect causes, against the plain head of its kind.

The data: synthetic embeddings with a known planted effect (`heads.synthetic.GroupEffect`: a 30% group whose
findings are fainter and partly turned towards directions of its own, as lower-contrast films would make them),
12,000 images of ~4,000 patients, 3 findings. Every head is fitted on train (val for its choices) and evaluated
on test by the fairness engine with one shared resampling plan, so the plain and the mitigated run are paired:
the claim is that the 95% CI of (gap mitigated - gap plain) lies below 0, for the gap the method targets.
"""

from __future__ import annotations

import numpy as np
import pytest

from fairness import ResamplingPlan, evaluate
from fairness.thresholds import choose_thresholds, keep_decisions
from fairness.tradeoff import VERDICTS, compare_mitigation, verdict
from fairness.report import Figure
from heads.registry import HEADS
from heads.synthetic import GroupEffect, synthetic_embeddings

CLASSES = ("a", "b", "c")
FAST = {"max_epochs": 30, "hidden": 64}
"""Settings that keep the MLP-based heads fast here (the same for a plain head and its mitigations)."""


def settings(name: str) -> dict:
    spec = HEADS[name]
    plain = spec.mitigation.plain if spec.mitigation else name
    return FAST if plain == "mlp" else {}


@pytest.fixture(scope="module")
def planted():
    data = synthetic_embeddings(12_000, 32, len(CLASSES), min_prevalence=0.2, group_effect=GroupEffect(), seed=0)
    sex = np.where(data.group == 1, "F", "M")  # the affected group plays "F", as in `bench data synth`'s default
    return data, sex, ResamplingPlan(), {}


def report_of(name: str, planted):
    data, sex, plan, cache = planted
    if name in cache:
        return cache[name]
    train, val, test = data.indices("train"), data.indices("val"), data.indices("test")
    X, y, groups = data.image, data.labels, data.group.astype(np.int64)
    spec = HEADS[name]
    head = spec.create(random_state=0, **settings(name))
    extra = {"groups": groups[train], "groups_val": groups[val]} if "groups" in spec.needs else {}
    head.fit(X[train], y[train], X[val], y[val], **extra)
    p = head.predict_proba(X, groups=groups) if spec.kind == "constrained" else head.predict_proba(X)
    thresholds = keep_decisions(choose_thresholds(y_val=y[val], p_val=p[val], kind="multi"),
                                head.chosen_on_val().get("decision_columns", ()))
    cache[name] = evaluate(y_test=y[test], p_test=p[test], kind="multi", classes=CLASSES, thresholds=thresholds,
                           patient_ids=data.patient[test].astype(str), sex=sex[test], attributes=("sex",),
                           n_boot=400, n_perm=0, plan=plan, seed=0)
    return cache[name]


MITIGATIONS = sorted(name for name, spec in HEADS.items() if spec.mitigation)


@pytest.mark.parametrize("name", MITIGATIONS)
def test_each_mitigation_shrinks_the_planted_gap_against_its_plain_head(name, planted):
    mitigation = HEADS[name].mitigation
    plain, mitigated = report_of(mitigation.plain, planted), report_of(name, planted)
    gap = mitigation.gap.format(attr="sex")
    assert plain.figures[gap].ci[0] > 0, f"the planted effect should open a {gap} in the plain {mitigation.plain}"
    outcome = compare_mitigation(plain, mitigated, gap=gap, attribute="sex", utility=mitigation.utility)
    assert outcome.gap_change.ci[1] < 0, (name, outcome.as_dict())
    assert outcome.verdict in VERDICTS and outcome.verdict not in ("not_shrunk", "grew")


def test_the_balancing_heads_raise_the_affected_groups_auc(planted):
    """Levelling up where it is possible: the minority's own directions get weight, so its AUC rises."""
    plain = report_of("linear", planted)
    for name in ("linear-reweight", "linear-groupdro"):
        outcome = compare_mitigation(plain, report_of(name, planted), gap="auc_gap_sex", attribute="sex",
                                     utility="auc")
        assert outcome.worst_change.ci[0] > 0, (name, outcome.as_dict())


def _figure(low: float, high: float) -> Figure:
    return Figure(value=(low + high) / 2, ci=(low, high))


@pytest.mark.parametrize("gap, worst, best, expected", [
    ((-0.05, -0.01), (0.01, 0.03), (-0.01, 0.01), "up"),
    ((-0.05, -0.01), (0.01, 0.03), (-0.04, -0.02), "up_at_a_cost"),
    ((-0.05, -0.01), (-0.01, 0.01), (-0.04, -0.02), "down"),
    ((-0.05, -0.01), (-0.03, -0.01), (-0.04, -0.02), "all_down"),
    ((-0.05, -0.01), (-0.01, 0.01), (-0.01, 0.01), "even"),
    ((-0.05, 0.01), (0.01, 0.03), (-0.01, 0.01), "not_shrunk"),
    ((0.01, 0.05), (-0.01, 0.01), (-0.01, 0.01), "grew"),
])
def test_the_verdict_reads_the_three_paired_changes(gap, worst, best, expected):
    assert verdict(_figure(*gap), _figure(*worst), _figure(*best)) == expected
