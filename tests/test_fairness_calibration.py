"""Calibration and utility figures against independent computations, and the debiased ECE by simulation:
the gap between a group of 60 and a group of 600 perfectly calibrated images is centred on 0."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, roc_auc_score

from fairness import evaluate

from test_fairness_metrics import single_label_data

TOL = 1e-9


def reference_debiased_ece(scores, outcomes, all_scores) -> float:
    """The debiased squared calibration error by hand: deciles of all scores as edges, then per bin the mean
    of d_i d_j over ordered pairs of different images, weighted by the bin's share of the group."""
    edges = np.quantile(all_scores, np.linspace(0, 1, 11)[1:-1])
    bins = np.searchsorted(edges, scores, side="right")
    d = scores - outcomes
    total = 0.0
    for b in range(10):
        members = d[bins == b]
        if members.size < 2:
            continue
        pair_products = [a * c for a, c in permutations(members.tolist(), 2)]
        total += members.size / d.size * float(np.mean(pair_products))
    return total


def multi_label(seed: int, n: int = 240, classes: int = 2):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, classes)) < 0.35).astype(np.int8)
    p = np.clip(0.35 * y + 0.65 * rng.random((n, classes)), 0, 1)
    return y, p, rng.choice(["F", "M"], n), rng.uniform(20, 90, n)


def rows_of(report):
    return {(row.attribute, row.level): row for row in report.groups}


def test_debiased_ece_is_top_label_for_single_label_and_per_class_for_multi_label():
    y, p, labels, sex, age = single_label_data(0, n=240, classes=3)
    report = evaluate(y_test=y, p_test=p, kind="single", classes=("a", "b", "c"), sex=sex, age=age, n_boot=0, n_perm=0)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == labels).astype(float)
    assert report.figures["ece"].value == pytest.approx(reference_debiased_ece(confidence, correct, confidence), abs=TOL)
    female = sex == "F"
    expected = reference_debiased_ece(confidence[female], correct[female], confidence)
    assert rows_of(report)[("sex", "F")].metrics["ece"].value == pytest.approx(expected, abs=TOL)
    male = reference_debiased_ece(confidence[~female], correct[~female], confidence)
    assert report.figures["ece_gap_sex"].value == pytest.approx(male - expected, abs=TOL)  # signed M - F

    y, p, sex, age = multi_label(1)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b"), sex=sex, age=age, n_boot=0, n_perm=0)
    per_class = [reference_debiased_ece(p[:, c], y[:, c].astype(float), p[:, c]) for c in range(2)]
    assert report.figures["ece"].value == pytest.approx(np.mean(per_class), abs=TOL)


def test_brier_and_balanced_accuracy_match_scikit_learn():
    y, p, labels, sex, age = single_label_data(2, n=240, classes=3)
    report = evaluate(y_test=y, p_test=p, kind="single", classes=("a", "b", "c"), sex=sex, age=age, n_boot=0, n_perm=0)
    predicted = p.argmax(axis=1)
    assert report.figures["balanced_accuracy"].value == pytest.approx(balanced_accuracy_score(labels, predicted), abs=TOL)
    assert report.figures["utility"].value == report.figures["balanced_accuracy"].value
    multiclass_brier = np.mean(np.sum((p - y) ** 2, axis=1))
    assert report.figures["brier"].value == pytest.approx(multiclass_brier, abs=TOL)
    cells = [(sex == s) & ((age >= 60) == old) for s in ("F", "M") for old in (False, True)]
    worst = min(balanced_accuracy_score(labels[m], predicted[m]) for m in cells)
    assert report.figures["worst_group_utility"].value == pytest.approx(worst, abs=TOL)
    female = sex == "F"
    brier = {g: np.mean(np.sum((p[m] - y[m]) ** 2, axis=1)) for g, m in (("F", female), ("M", ~female))}
    assert report.figures["brier_gap_sex"].value == pytest.approx(brier["M"] - brier["F"], abs=TOL)

    y, p, sex, age = multi_label(3)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b"), sex=sex, age=age, y_val=y, p_val=p,
                      n_boot=0, n_perm=0)
    decisions = (p >= np.asarray(report.thresholds.values)).astype(int)
    balanced = np.mean([balanced_accuracy_score(y[:, c], decisions[:, c]) for c in range(2)])
    assert report.figures["balanced_accuracy"].value == pytest.approx(balanced, abs=TOL)
    assert report.figures["brier"].value == pytest.approx(np.mean([brier_score_loss(y[:, c], p[:, c]) for c in range(2)]),
                                                          abs=TOL)
    assert report.figures["utility"].value == pytest.approx(np.mean([roc_auc_score(y[:, c], p[:, c]) for c in range(2)]),
                                                            abs=TOL)


def calibrated(rng, n_female: int, n_male: int, female_scale: float = 1.0, male_scale: float = 1.0):
    """One finding; scores p ~ Beta(2, 5); the label is drawn with probability scale x p per sex (1: calibrated)."""
    sex = np.array(["F"] * n_female + ["M"] * n_male)
    p = rng.beta(2, 5, sex.size)
    truth = np.clip(p * np.where(sex == "F", female_scale, male_scale), 0, 1)
    return dict(y_test=(rng.random(sex.size) < truth).astype(np.int8)[:, None], p_test=p[:, None], sex=sex)


ONE_CLASS = dict(kind="multi", classes=("finding",), threshold_rule="fixed", n_perm=0, attributes=("sex",))


@pytest.mark.parametrize("scales", [(1.0, 1.0), (1.4, 0.8)], ids=["no gap", "planted gap"])
def test_ece_gap_between_groups_of_60_and_600_is_unbiased_and_its_ci_covers_the_truth(scales):
    truth = evaluate(**calibrated(np.random.default_rng(99), 100_000, 100_000, *scales), **ONE_CLASS, n_boot=0)
    true_gap = truth.figures["ece_gap_sex"].value
    rng = np.random.default_rng(1)
    covered, estimates, binned_gaps = [], [], []
    for dataset in range(60):
        report = evaluate(**calibrated(rng, 60, 600, *scales), **ONE_CLASS, n_boot=200, seed=dataset)
        low, high = report.figures["ece_gap_sex"].ci
        covered.append(low <= true_gap <= high)
        estimates.append(report.figures["ece_gap_sex"].value)
        rows = rows_of(report)
        binned_gaps.append(rows[("sex", "M")].metrics["ece_binned"].value - rows[("sex", "F")].metrics["ece_binned"].value)
    assert 0.9 <= np.mean(covered) <= 1.0, np.mean(covered)  # nominal 95%; conservative near perfect calibration
    assert abs(np.mean(estimates) - true_gap) < 3 * np.std(estimates) / np.sqrt(len(estimates)) + 1e-3
    if scales == (1.0, 1.0):
        assert abs(true_gap) < 1e-4
        assert np.mean(binned_gaps) < -0.05  # the peers' 10-bin ECE: a "gap" from group size alone (60 worse)
