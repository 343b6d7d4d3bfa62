"""The seed study's figures (Sun et al. 2025) on a hand-computed example, `seed_exact`, and thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.core.errors import BenchError
from fairness import Thresholds, choose_thresholds, evaluate
from fairness.groups import ERR_AGE_CUTS, age_codes, build_groups
from fairness.thresholds import ERR_RULE


def hand_example(old_female_age: float = 70.0):
    """Two classes, four sex x age cells of four images (labels 0, 0, 1, 1 in each cell).

    Every call is right except one in the (F, old) cell, where a class-0 image is called class 1:
    that cell's macro F1 is (2/3 + 4/5) / 2 = 11/15, every other cell's is 1.
    """
    sex, age, labels, probability_of_1 = [], [], [], []
    for s, a in (("M", 30.0), ("M", 70.0), ("F", 30.0), ("F", old_female_age)):
        for label in (0, 0, 1, 1):
            sex.append(s)
            age.append(a)
            labels.append(label)
            probability_of_1.append(0.8 if label == 1 else 0.2)
    probability_of_1[-4] = 0.7  # the one mistake: (F, old), label 0, called 1
    labels = np.array(labels)
    y = np.eye(2, dtype=np.int8)[labels]
    p1 = np.array(probability_of_1)
    p = np.stack([1 - p1, p1], axis=1)
    return y, p, np.array(sex), np.array(age)


def run(y, p, sex, age, **options):
    return evaluate(y_test=y, p_test=p, kind="single", classes=("c0", "c1"), sex=sex, age=age, n_boot=0, n_perm=0,
                    min_group_size=1, **options)


def test_seed_figures_match_the_hand_computed_example():
    report = run(*hand_example())
    figures = {name: fig.value for name, fig in report.figures.items()}
    assert figures["f1_gap_sex"] == pytest.approx(1 - (1 + 11 / 15) / 2, abs=1e-12)  # +2/15: men better
    assert figures["f1_gap_age"] == pytest.approx((1 + 11 / 15) / 2 - 1, abs=1e-12)  # -2/15: older worse
    assert figures["worst_f1_gap"] == pytest.approx(2 / 15, abs=1e-12)
    # class 0: TPR M 1, F 3/4, FPR 0 both; class 1: TPR 1 both, FPR M 0, F 1/4 -> mean of 1/8 and 1/8
    assert figures["eqodds_sex"] == pytest.approx(0.125, abs=1e-12)
    assert figures["eqodds_age"] == pytest.approx(0.125, abs=1e-12)
    assert figures["var_f1"] == pytest.approx((14 / 15 - 16 / 17) ** 2 / 2, abs=1e-12)
    assert figures["accuracy"] == pytest.approx(15 / 16, abs=1e-12)
    # top-label 10-bin ECE: men all right at confidence 0.8: 0.2; women 7 right at 0.8 (bin 8) and one wrong
    # at 0.7 (bin 7): 7/8 x 0.2 + 1/8 x 0.7 = 0.2625
    rows = {(row.attribute, row.level): row.metrics for row in report.groups}
    assert rows[("sex", "M")]["ece_binned"].value == pytest.approx(0.2, abs=1e-12)
    assert rows[("sex", "F")]["ece_binned"].value == pytest.approx(0.2625, abs=1e-12)


def test_seed_exact_counts_age_60_in_both_age_groups_of_eqodds():
    y, p, sex, age = hand_example(old_female_age=60.0)
    fixed = run(y, p, sex, age)
    exact = run(y, p, sex, age, seed_exact=True)
    assert fixed.figures["eqodds_age"].value == pytest.approx(0.125, abs=1e-12)
    # seed: young = [0, 60] holds the (F, 60) cell too: class 0 TPR 5/6 vs 3/4, class 1 FPR 1/6 vs 1/4
    assert exact.figures["eqodds_age"].value == pytest.approx(1 / 24, abs=1e-12)
    assert exact.figures["f1_gap_age"].value == fixed.figures["f1_gap_age"].value  # the F1 gaps had no slip


def seed_code_ece_gap(y, p, groups_a, groups_b):
    """The seed code's "ECE" difference, transcribed: per class mean |p - y| per group, class mean, |a - b|."""
    def macro(mask):
        return np.mean([np.mean(np.abs(p[mask, c] - y[mask, c])) for c in range(y.shape[1])])

    return abs(macro(groups_a) - macro(groups_b))


def test_seed_exact_ece_gap_is_the_unbinned_mean_absolute_error():
    rng = np.random.default_rng(0)
    n = 300
    labels = rng.integers(0, 3, n)
    p = rng.dirichlet(np.ones(3), n)
    y = np.eye(3, dtype=np.int8)[labels]
    sex = rng.choice(["F", "M"], n)
    age = rng.integers(20, 90, n).astype(float)
    exact = evaluate(y_test=y, p_test=p, kind="single", classes=("a", "b", "c"), sex=sex, age=age, n_boot=0, n_perm=0,
                     seed_exact=True)
    default = evaluate(y_test=y, p_test=p, kind="single", classes=("a", "b", "c"), sex=sex, age=age, n_boot=0,
                       n_perm=0)
    assert exact.figures["ece_gap_sex"].value == pytest.approx(seed_code_ece_gap(y, p, sex == "M", sex == "F"), abs=1e-12)
    assert exact.figures["ece_gap_age"].value == pytest.approx(seed_code_ece_gap(y, p, age < 60, age >= 60), abs=1e-12)
    assert default.figures["ece_gap_sex"].value != pytest.approx(exact.figures["ece_gap_sex"].value, abs=1e-6)


def test_thresholds_never_read_test_labels():
    rng = np.random.default_rng(1)
    n = 400
    y_val = (rng.random((n, 2)) < 0.3).astype(np.int8)
    p_val = np.clip(0.4 * y_val + 0.6 * rng.random((n, 2)), 0, 1)
    y_test = (rng.random((n, 2)) < 0.3).astype(np.int8)
    p_test = np.clip(0.4 * y_test + 0.6 * rng.random((n, 2)), 0, 1)
    common = dict(kind="multi", classes=("a", "b"), y_val=y_val, p_val=p_val, n_boot=0, n_perm=0)
    first = evaluate(y_test=y_test, p_test=p_test, **common)
    shuffled = evaluate(y_test=y_test[rng.permutation(n)], p_test=p_test, **common)
    assert first.thresholds == shuffled.thresholds
    assert first.figures["macro_f1"].value != shuffled.figures["macro_f1"].value
    other_val = evaluate(y_test=y_test, p_test=p_test, kind="multi", classes=("a", "b"), y_val=y_val[::-1],
                         p_val=p_val, n_boot=0, n_perm=0)
    assert other_val.thresholds != first.thresholds
    assert first.thresholds == choose_thresholds(y_val=y_val, p_val=p_val, kind="multi", rule="f1")


def test_threshold_rules_and_fallback_without_val():
    rng = np.random.default_rng(2)
    y = (rng.random((200, 1)) < 0.5).astype(np.int8)
    p = np.clip(0.3 * y + 0.7 * rng.random((200, 1)), 0, 1)
    assert choose_thresholds(y_val=y, p_val=p, kind="multi", rule="fixed").values == (0.5,)
    youden = choose_thresholds(y_val=y, p_val=p, kind="multi", rule="youden")
    assert youden.rule == "youden" and 0 < youden.values[0] < 1
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a",), n_boot=0, n_perm=0)
    assert report.thresholds == Thresholds(kind="multi", rule="fixed (no val split)", values=(0.5,))
    with pytest.raises(BenchError) as error:
        choose_thresholds(y_val=y, p_val=p, kind="multi", rule="best")
    assert str(error.value) == ERR_RULE.format(rule="best")


def test_age_groups_binary_decades_and_custom_cuts():
    ages = np.array([5.0, 59.9, 60.0, 85.0, np.nan])
    assert age_codes(ages).tolist() == [0, 0, 1, 1, -1]
    groups = build_groups(n=5, age=ages, attributes=("age",), age_bins="decades")
    assert groups.attribute("age").levels[0] == "<10" and groups.attribute("age").levels[-1] == ">=90"
    custom = build_groups(n=5, age=ages, attributes=("age",), age_bins="40,80")
    assert custom.attribute("age").levels == ("<40", "40-80", ">=80")
    with pytest.raises(BenchError) as error:
        age_codes(ages, cuts=(60, 40))
    assert str(error.value) == ERR_AGE_CUTS.format(cuts=[60.0, 40.0])


def test_unknown_attributes_fail_and_attributes_without_values_are_reported():
    y, p, sex, age = hand_example()
    with pytest.raises(BenchError, match="unknown group attribute 'race'"):
        run(y, p, sex, age, attributes=("sex", "race"))
    report = evaluate(y_test=y, p_test=p, kind="single", classes=("c0", "c1"), sex=sex, age=None, n_boot=0, n_perm=0)
    assert report.options["attributes_without_values"] == ["age", "sex_age"]
    assert "auc_gap_sex" in report.figures and "f1_gap_sex" not in report.figures


def test_unknown_sex_values_are_refused_and_missing_ones_left_out_of_sex_groups():
    from fairness.groups import ERR_SEX

    with pytest.raises(BenchError) as error:
        build_groups(n=3, sex=["F", "female", "M"], attributes=("sex",))
    assert str(error.value) == ERR_SEX.format(value="female", row=1)
    groups = build_groups(n=3, sex=["F", None, "M"], attributes=("sex",))
    members = groups.attribute("sex").members[:, groups.atom_of_image]
    assert members.tolist() == [[True, False, False], [False, False, True]]
