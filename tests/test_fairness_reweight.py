"""Prevalence reweighting against scikit-learn with sample weights, and its permutation test under the null."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score, roc_auc_score

from fairness import evaluate

TOL = 1e-9


def data(rng, n: int = 500, classes: int = 2):
    sex, age = np.where(rng.random(n) < 0.5, "F", "M"), rng.uniform(20, 90, n)
    prevalence = np.where(sex == "F", 0.15, 0.45)[:, None] * np.linspace(1.0, 1.5, classes)[None, :]
    y = (rng.random((n, classes)) < prevalence).astype(np.int8)
    p = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1, y.shape))))
    return y, p, sex, age


def by_hand_weights(labels, cells):
    """P(value) / P(value | cell) for every image (one class)."""
    weights = np.empty(labels.size)
    for cell in np.unique(cells):
        members = cells == cell
        for value in (0, 1):
            chosen = members & (labels == value)
            weights[chosen] = np.mean(labels == value) / np.mean(labels[members] == value)
    return weights


def test_reweighted_group_figures_equal_scikit_learn_with_sample_weights():
    y, p, sex, age = data(np.random.default_rng(0))
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b"), sex=sex, age=age, threshold_rule="fixed",
                      n_boot=0, n_perm=0, reweight_prevalence=True)
    cells = np.char.add(sex.astype(str), np.where(age < 60, "young", "old"))
    rows = {(row.attribute, row.level): row.metrics for row in report.groups}
    decisions = (p >= 0.5).astype(int)
    for level in ("F", "M"):
        m = sex == level
        weights = [by_hand_weights(y[:, c], cells)[m] for c in range(2)]
        f1 = np.mean([f1_score(y[m, c], decisions[m, c], sample_weight=weights[c]) for c in range(2)])
        auc = np.mean([roc_auc_score(y[m, c], p[m, c], sample_weight=weights[c]) for c in range(2)])
        tpr = np.mean([recall_score(y[m, c], decisions[m, c], sample_weight=weights[c]) for c in range(2)])
        prevalence = [np.average(y[m, c], weights=weights[c]) for c in range(2)]
        assert rows[("sex", level)]["f1"].value == pytest.approx(f1, abs=TOL)
        assert rows[("sex", level)]["auc"].value == pytest.approx(auc, abs=TOL)
        assert rows[("sex", level)]["tpr"].value == pytest.approx(tpr, abs=TOL)
        assert prevalence == pytest.approx(list(y.mean(axis=0)), abs=TOL)  # every group: the overall prevalence
    plain = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b"), sex=sex, age=age, threshold_rule="fixed",
                     n_boot=0, n_perm=0)
    assert abs(report.figures["dpd_sex"].value) < abs(plain.figures["dpd_sex"].value) / 3  # case mix removed


def test_reweighted_permutation_test_keeps_its_level():
    rng = np.random.default_rng(1)
    rejected = 0
    for seed in range(60):
        y, p, sex, age = data(rng, n=200, classes=1)
        report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a",), sex=sex, age=age, threshold_rule="fixed",
                          n_boot=0, n_perm=49, seed=seed, reweight_prevalence=True, tested_figures={"f1_gap_sex"},
                          auc_bins=None if seed % 2 else 512)
        rejected += report.figures["f1_gap_sex"].p_value <= 0.05
    assert rejected <= 8  # about 5% of 60 (binomial 99.9% bound 8)
