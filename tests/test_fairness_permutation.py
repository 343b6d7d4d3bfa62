"""Prevalence-aware permutation tests: under "no gap beyond case mix" with unequal prevalence, p < 0.05 about
5% of the time for F1, TPR and ECE gaps (and for the max-abs worst_f1_gap); Monte-Carlo p-values never go
below 1 / (n_perm + 1); shuffles stay inside their strata; power (MDE) and positives-per-class flags."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from fairness import evaluate
from fairness.resampling import MDE_Z, permuted_patient_codes

NAMES = ("f1_gap_sex", "eopp_sex", "ece_gap_sex")


def unequal_prevalence(rng, n: int = 200, female_prevalence: float = 0.2, male_prevalence: float = 0.5):
    """One finding, more common in men; the score depends only on the label (the model treats both sexes alike)."""
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    y = (rng.random(n) < np.where(sex == "F", female_prevalence, male_prevalence)).astype(np.int8)
    p = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1, n))))
    return dict(y_test=y[:, None], p_test=p[:, None], sex=sex, age=rng.uniform(20, 90, n))


COMMON = dict(kind="multi", classes=("finding",), threshold_rule="fixed")


def rejection_rates(stratify: bool, datasets: int, *, attributes=("sex", "age"), names=NAMES, n_perm: int = 99) -> dict:
    rng = np.random.default_rng(0)
    rejected = {name: 0 for name in names}
    for seed in range(datasets):
        report = evaluate(**unequal_prevalence(rng), **COMMON, attributes=attributes, n_boot=0, n_perm=n_perm, seed=seed,
                          tested_figures=set(names), stratify_permutations=stratify)
        for name in names:
            rejected[name] += report.figures[name].p_value <= 0.05
    return {name: count / datasets for name, count in rejected.items()}


def test_null_gaps_under_unequal_prevalence_reject_at_about_five_percent():
    datasets = 160
    rates = rejection_rates(True, datasets)
    low, high = binom.ppf([0.001, 0.999], datasets, 0.05) / datasets  # a 99.8% binomial band around 5%
    for name, rate in rates.items():
        assert low <= rate <= high, (name, rate, (low, high))
    marginal = rejection_rates(False, 60)  # shuffling sex among all patients mistakes case mix for a gap
    assert marginal["f1_gap_sex"] > 0.3 and marginal["ece_gap_sex"] > 0.12, marginal


def test_worst_f1_gap_is_tested_and_its_null_rejects_rarely():
    rates = rejection_rates(True, 60, attributes=("sex", "age"), names=("worst_f1_gap",))
    assert rates["worst_f1_gap"] <= binom.ppf(0.999, 60, 0.05) / 60
    report = evaluate(**unequal_prevalence(np.random.default_rng(1)), **COMMON, n_boot=0, n_perm=20)
    worst = report.figures["worst_f1_gap"]
    assert worst.p_value is not None and "biased upward" in worst.note
    assert report.figures["f1_gap_sex"].note == ""  # a signed difference of means: no bias note


def test_p_values_stop_at_one_over_n_perm_plus_one_and_say_so():
    rng = np.random.default_rng(2)
    data = unequal_prevalence(rng, n=400, female_prevalence=0.35, male_prevalence=0.35)
    female = data["sex"] == "F"
    data["p_test"] = np.where(female[:, None], 0.5, data["p_test"])  # women: no signal at all
    report = evaluate(**data, **COMMON, attributes=("sex",), n_boot=0, n_perm=49, tested_figures={"auc_gap_sex"})
    figure = report.figures["auc_gap_sex"]
    assert figure.p_value == pytest.approx(1 / 50) and figure.p_at_bound
    assert figure.as_dict()["p_at_bound"] is True


def test_stratified_shuffles_keep_each_stratum_and_move_within_it():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 2, (300, 1))
    strata = rng.integers(0, 4, 300)
    shuffled = permuted_patient_codes(codes, n_perm=50, rng=rng, strata=strata)
    for stratum in range(4):
        members = strata == stratum
        counts = np.bincount(codes[members, 0], minlength=2)
        assert all(np.array_equal(np.bincount(s[members, 0], minlength=2), counts) for s in shuffled)
    assert not all(np.array_equal(s, codes) for s in shuffled)


def test_mde_is_the_80_percent_power_effect_from_the_bootstrap_se_and_flags_count_positives():
    report = evaluate(**unequal_prevalence(np.random.default_rng(4), n=160), **COMMON, n_perm=0, n_boot=200,
                      min_positives=20)
    gap = report.figures["f1_gap_sex"]
    finite = gap.replicates[np.isfinite(gap.replicates)]
    assert gap.mde == pytest.approx(MDE_Z * np.std(finite, ddof=1), rel=1e-12)
    assert gap.below_mde == (abs(gap.value) < gap.mde)
    assert report.figures["macro_auc"].mde is None  # utilities have no MDE
    rows = {(row.attribute, row.level): row for row in report.groups}
    cell = rows[("sex_age", "F,<60")]
    assert cell.positives["finding"] < 20 and f"positives < 20: finding {cell.positives['finding']}" in cell.flag
    assert cell.prevalence["finding"] == pytest.approx(cell.positives["finding"] / cell.count)
    assert "F,<60 positives < 20" in gap.flag
