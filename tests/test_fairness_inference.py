"""Uncertainty: patient-clustered bootstrap CIs (coverage, clustering), permutation tests, paired
comparison, multiple-testing correction, small-group flags, binned replicate AUC."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from benchmark.core.errors import BenchError
from fairness import adjust_p_values, evaluate, paired_difference
from fairness.multitest import ERR_METHOD
from fairness.resampling import bootstrap_counts


def simulate(rng, *, patients: int, images_per_patient: int = 2, female_signal: float = 1.0, male_signal: float = 2.0,
             patient_spread: float = 1.0):
    """One binary finding; women's scores separate less (a planted F1/AUC gap); a patient's images share a
    latent label and score offset (correlated images)."""
    sex = np.where(rng.random(patients) < 0.5, "F", "M")
    age = rng.integers(20, 95, patients).astype(float)
    label = (rng.random(patients) < 0.4).astype(np.int8)
    offset = rng.normal(0, patient_spread, patients)
    repeat = np.repeat(np.arange(patients), images_per_patient)
    signal = np.where(sex[repeat] == "F", female_signal, male_signal)
    logit = signal * (2 * label[repeat] - 1) + offset[repeat] + rng.normal(0, 1, repeat.size)
    p = 1 / (1 + np.exp(-logit))
    return dict(y_test=label[repeat][:, None], p_test=p[:, None], sex=sex[repeat], age=age[repeat],
                patient_ids=repeat)


COMMON = dict(kind="multi", classes=("finding",), threshold_rule="fixed", n_perm=0)


def test_planted_gap_is_recovered_and_its_ci_covers_the_truth_at_the_nominal_rate():
    truth = evaluate(**simulate(np.random.default_rng(123), patients=50_000), **COMMON, n_boot=0)
    true_gap = truth.figures["f1_gap_sex"].value
    assert true_gap > 0.08  # the planted effect: men's F1 higher
    rng = np.random.default_rng(7)
    covered, estimates = [], []
    for dataset in range(100):
        report = evaluate(**simulate(rng, patients=300), **COMMON, n_boot=200, seed=dataset)
        low, high = report.figures["f1_gap_sex"].ci
        covered.append(low <= true_gap <= high)
        estimates.append(report.figures["f1_gap_sex"].value)
    coverage = float(np.mean(covered))
    assert 0.87 <= coverage <= 0.99, coverage
    assert abs(np.mean(estimates) - true_gap) < 0.02


def test_patient_clustered_ci_is_wider_than_image_level_when_images_are_correlated():
    data = simulate(np.random.default_rng(3), patients=150, images_per_patient=6, patient_spread=2.0)
    clustered = evaluate(**data, **COMMON, n_boot=400)
    image_level = evaluate(**{**data, "patient_ids": None}, **COMMON, n_boot=400)
    for name in ("macro_auc", "f1_gap_sex", "accuracy"):
        assert clustered.figures[name].value == image_level.figures[name].value
        width = np.diff(clustered.figures[name].ci)[0]
        naive = np.diff(image_level.figures[name].ci)[0]
        assert width > 1.5 * naive, (name, width, naive)
    assert image_level.options["patients"].startswith("none given")


def test_bootstrap_keeps_strata_sizes_and_is_reproducible():
    strata = np.array([0] * 50 + [1] * 5 + [2] * 20)
    counts = bootstrap_counts(strata, n_boot=300, rng=np.random.default_rng(0))
    assert counts.shape == (75, 300)
    for stratum, size in ((0, 50), (1, 5), (2, 20)):
        assert np.all(counts[strata == stratum].sum(axis=0) == size)
    again = bootstrap_counts(strata, n_boot=300, rng=np.random.default_rng(0))
    assert np.array_equal(counts, again)
    assert counts[strata == 1].std() > 0  # the small stratum is resampled, not frozen


def test_permutation_test_finds_a_planted_gap_and_not_a_null_one():
    planted = evaluate(**simulate(np.random.default_rng(4), patients=400, female_signal=0.5), **{**COMMON, "n_perm": 300},
                       n_boot=0, tested_figures={"f1_gap_sex", "auc_gap_sex"})
    assert planted.figures["f1_gap_sex"].p_value < 0.01
    assert planted.figures["auc_gap_sex"].p_value < 0.01
    assert planted.figures["f1_gap_sex"].p_adj < 0.05  # a family of two tests: Holm x 2
    null_p = []
    for seed in range(12):
        report = evaluate(**simulate(np.random.default_rng(100 + seed), patients=200, female_signal=2.0),
                          **{**COMMON, "n_perm": 200}, n_boot=0, seed=seed)
        null_p.append(report.figures["auc_gap_sex"].p_value)
    assert np.mean(np.array(null_p) < 0.05) <= 0.25
    assert np.median(null_p) > 0.2


def test_paired_difference_between_runs_on_the_same_test_set():
    data = simulate(np.random.default_rng(5), patients=300)
    worse = dict(data, p_test=np.clip(data["p_test"] * 0.5 + 0.25 * np.random.default_rng(6).random(data["p_test"].shape), 0, 1))
    a = evaluate(**data, **COMMON, n_boot=300, seed=11)
    b = evaluate(**worse, **COMMON, n_boot=300, seed=11)
    same = paired_difference(a, a, "macro_auc")
    assert same.value == 0 and same.ci == (0.0, 0.0)
    difference = paired_difference(a, b, "macro_auc")
    assert difference.value == pytest.approx(a.figures["macro_auc"].value - b.figures["macro_auc"].value)
    assert difference.ci[0] > 0 and difference.p_value < 0.01
    unpaired = np.diff(a.figures["macro_auc"].ci)[0] + np.diff(b.figures["macro_auc"].ci)[0]
    assert np.diff(difference.ci)[0] < unpaired
    other_seed = evaluate(**worse, **COMMON, n_boot=300, seed=12)
    with pytest.raises(BenchError):
        paired_difference(a, other_seed, "macro_auc")


def test_holm_and_benjamini_hochberg():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    holm = adjust_p_values(p, method="holm")
    assert np.allclose(holm[:4], [0.03, 0.06, 0.06, 0.02]) and np.isnan(holm[4])
    bh = adjust_p_values(p, method="bh")
    assert np.allclose(bh[:4], false_discovery_control(p[:4], method="bh"))
    with pytest.raises(BenchError) as error:
        adjust_p_values(p, method="bonferroni")
    assert str(error.value) == ERR_METHOD.format(method="bonferroni")


def test_small_groups_are_flagged():
    data = simulate(np.random.default_rng(8), patients=200)
    data["sex"] = np.where(np.arange(data["sex"].size) < 12, "F", "M")
    report = evaluate(**data, **COMMON, n_boot=50, min_group_size=30)
    assert "small group" in report.figures["f1_gap_sex"].flag
    assert "small group" in report.figures["auc_gap_sex"].flag
    assert report.figures["macro_auc"].flag == ""
    rows = {(r.attribute, r.level): r for r in report.groups}
    assert rows[("sex", "F")].count == 12 and "small group" in rows[("sex", "F")].flag
    assert rows[("sex", "M")].flag == ""


def test_binned_replicate_auc_is_close_to_exact():
    data = simulate(np.random.default_rng(9), patients=400)
    binned = evaluate(**data, **COMMON, n_boot=100, seed=2, auc_bins=64)
    exact = evaluate(**data, **COMMON, n_boot=100, seed=2, auc_bins=None)
    for name in ("macro_auc", "auc_gap_sex", "worst_group_auc_sex", "worst_group_utility"):
        assert binned.figures[name].value == exact.figures[name].value
        assert np.max(np.abs(binned.figures[name].replicates - exact.figures[name].replicates)) < 3e-3
    assert np.array_equal(binned.figures["macro_f1"].replicates, exact.figures["macro_f1"].replicates)


def test_difference_and_ratio_of_any_group_metric():
    data = simulate(np.random.default_rng(10), patients=300, female_signal=0.7)
    report = evaluate(**data, **COMMON, n_boot=100)
    gap = report.difference("auc", "sex")  # max - min; auc_gap_sex is the signed M - F
    assert gap.value == pytest.approx(abs(report.figures["auc_gap_sex"].value), abs=1e-12)
    assert np.allclose(gap.replicates, np.abs(report.figures["auc_gap_sex"].replicates), atol=1e-12)
    rows = {row.level: row.metrics["tpr"].value for row in report.groups if row.attribute == "age"}
    assert report.ratio("tpr", "age").value == pytest.approx(min(rows.values()) / max(rows.values()), abs=1e-12)
    assert report.ratio("tpr", "age").ci[0] <= report.ratio("tpr", "age").ci[1] <= 1
    with pytest.raises(BenchError, match="no groups of attribute 'race'"):
        report.difference("auc", "race")
    with pytest.raises(BenchError, match="no per-group metric 'recall'"):
        report.difference("recall", "sex")
