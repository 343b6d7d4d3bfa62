"""Every metric and figure of the fairness engine against scikit-learn and fairlearn on random data."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from benchmark.core.errors import BenchError
from fairness import evaluate
from fairness.curves import average_precision, f1_max_threshold, youden_threshold
from fairness.inputs import ERR_LABELS, ERR_PROBABILITIES, ERR_SHAPE, ERR_SINGLE
from fairness.mann_whitney import mann_whitney_binned as _mann_whitney_binned, mann_whitney_fixed as _mann_whitney_fixed

TOL = 1e-9


def multi_label_data(seed: int, n: int = 400, classes: int = 3):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, classes)) < 0.35).astype(np.int8)
    p = np.clip(0.3 * y + 0.7 * rng.random((n, classes)), 0, 1)
    p[:10] = np.round(p[:10], 1)  # a few ties
    sex = rng.choice(["F", "M"], n)
    age = rng.integers(20, 95, n).astype(float)
    patients = rng.integers(0, n // 2, n)
    return y, p, sex, age, patients


def single_label_data(seed: int, n: int = 500, classes: int = 4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += 1.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.eye(classes, dtype=np.int8)[labels]
    return y, p, labels, rng.choice(["F", "M"], n), rng.integers(20, 95, n).astype(float)


def group_row(report, attribute, level):
    return next(row for row in report.groups if row.attribute == attribute and row.level == level)


def test_per_group_metrics_match_scikit_learn_multi_label():
    y, p, sex, age, patients = multi_label_data(0)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b", "c"), patient_ids=patients, sex=sex,
                      age=age, y_val=y, p_val=p, n_boot=0, n_perm=0)
    decisions = (p >= np.asarray(report.thresholds.values)).astype(int)
    masks = {("overall", "all"): np.ones(len(y), bool), ("sex", "F"): sex == "F", ("sex", "M"): sex == "M",
             ("age", "<60"): age < 60, ("age", ">=60"): age >= 60, ("sex_age", "M,>=60"): (sex == "M") & (age >= 60)}
    for (attribute, level), mask in masks.items():
        row = group_row(report, attribute, level)
        assert row.count == mask.sum()
        metrics = row.metrics
        expected = {
            "auc": np.mean([roc_auc_score(y[mask, c], p[mask, c]) for c in range(3)]),
            "average_precision": np.mean([average_precision_score(y[mask, c], p[mask, c]) for c in range(3)]),
            "f1": f1_score(y[mask], decisions[mask], average="macro"),
            "precision": precision_score(y[mask], decisions[mask], average="macro"),
            "tpr": recall_score(y[mask], decisions[mask], average="macro"),
            "accuracy": accuracy_score(y[mask], decisions[mask]),
            "selection_rate": decisions[mask].mean(),
            "fpr": np.mean([((decisions[mask, c] == 1) & (y[mask, c] == 0)).sum() / (y[mask, c] == 0).sum()
                            for c in range(3)]),
        }
        for name, value in expected.items():
            assert metrics[name].value == pytest.approx(value, abs=TOL), (attribute, level, name)
        assert metrics["tnr"].value == pytest.approx(1 - expected["fpr"], abs=TOL)
        assert metrics["fnr"].value == pytest.approx(1 - expected["tpr"], abs=TOL)


def naive_ece(y, p, bins=10):
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.sum() / len(p) * abs(p[members].mean() - y[members].mean())
    return total


def test_ece_binned_is_ten_equal_width_bins():
    y, p, sex, age, patients = multi_label_data(1)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b", "c"), patient_ids=patients, sex=sex,
                      age=age, n_boot=0, n_perm=0)
    female = sex == "F"
    expected = np.mean([naive_ece(y[female, c], p[female, c]) for c in range(3)])
    assert group_row(report, "sex", "F").metrics["ece_binned"].value == pytest.approx(expected, abs=TOL)
    overall = np.mean([naive_ece(y[:, c], p[:, c]) for c in range(3)])
    assert report.figures["ece_binned"].value == pytest.approx(overall, abs=TOL)


def test_single_label_figures_match_scikit_learn():
    y, p, labels, sex, age = single_label_data(2)
    report = evaluate(y_test=y, p_test=p, kind="single", classes=("w", "x", "y", "z"), sex=sex, age=age,
                      n_boot=0, n_perm=0)
    predicted = p.argmax(axis=1)
    assert report.thresholds.rule == "argmax"
    assert report.figures["accuracy"].value == pytest.approx(accuracy_score(labels, predicted), abs=TOL)
    assert report.figures["macro_f1"].value == pytest.approx(f1_score(labels, predicted, average="macro"), abs=TOL)
    assert report.figures["var_f1"].value == pytest.approx(np.var(f1_score(labels, predicted, average=None), ddof=1), abs=TOL)
    assert report.figures["macro_auc"].value == pytest.approx(
        roc_auc_score(labels, p, multi_class="ovr", average="macro"), abs=TOL)
    per_class_f1 = f1_score(labels, predicted, average=None)
    assert report.figures["worst_class_f1"].value == pytest.approx(per_class_f1.min(), abs=TOL)


def test_fairness_figures_match_fairlearn_for_one_class():
    y, p, sex, age, patients = multi_label_data(3, n=600, classes=1)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a",), patient_ids=patients, sex=sex, age=age,
                      y_val=y, p_val=p, n_boot=0, n_perm=0)
    decisions = (p[:, 0] >= report.thresholds.values[0]).astype(int)
    for attribute, groups in (("sex", sex), ("age", np.where(age < 60, "young", "old"))):
        eod = equalized_odds_difference(y[:, 0], decisions, sensitive_features=groups)
        eopp = equal_opportunity_difference(y[:, 0], decisions, sensitive_features=groups)
        dpd = demographic_parity_difference(y[:, 0], decisions, sensitive_features=groups)
        assert report.figures[f"eod_{attribute}"].value == pytest.approx(eod, abs=TOL)
        assert report.figures[f"eopp_{attribute}"].value == pytest.approx(eopp, abs=TOL)
        assert report.figures[f"dpd_{attribute}"].value == pytest.approx(dpd, abs=TOL)
    cells = np.char.add(np.char.add(sex.astype(str), ","), np.where(age < 60, "y", "o"))
    eod_cells = equalized_odds_difference(y[:, 0], decisions, sensitive_features=cells)
    assert report.figures["eod_sex_age"].value == pytest.approx(eod_cells, abs=TOL)
    # a variance over classes is undefined with one class: the flag says so, not that a group lacks images
    assert np.isnan(report.figures["var_f1"].value)
    assert report.figures["var_f1"].flag == "undefined (a variance over classes needs two or more classes)"


def test_auc_gap_es_auc_and_worst_group_auc_follow_their_formulas():
    y, p, sex, age, patients = multi_label_data(4, n=500, classes=2)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b"), patient_ids=patients, sex=sex, age=age,
                      n_boot=0, n_perm=0)
    auc = {g: [roc_auc_score(y[sex == g, c], p[sex == g, c]) for c in range(2)] for g in ("F", "M")}
    overall = [roc_auc_score(y[:, c], p[:, c]) for c in range(2)]
    assert report.figures["auc_gap_sex"].value == pytest.approx(np.mean(auc["M"]) - np.mean(auc["F"]), abs=TOL)
    es = np.mean([overall[c] / (1 + abs(auc["F"][c] - overall[c]) + abs(auc["M"][c] - overall[c])) for c in range(2)])
    assert report.figures["es_auc_sex"].value == pytest.approx(es, abs=TOL)
    cell_masks = [((sex == s) & ((age >= 60) == old)) for s in ("F", "M") for old in (False, True)]
    by_age = [np.mean([roc_auc_score(y[m, c], p[m, c]) for c in range(2)]) for m in (age < 60, age >= 60)]
    by_cell = [np.mean([roc_auc_score(y[m, c], p[m, c]) for c in range(2)]) for m in cell_masks]
    assert report.figures["worst_group_auc_sex"].value == pytest.approx(min(np.mean(auc[g]) for g in "FM"), abs=TOL)
    assert report.figures["worst_group_auc_age"].value == pytest.approx(min(by_age), abs=TOL)
    assert report.figures["worst_group_auc_sex_age"].value == pytest.approx(min(by_cell), abs=TOL)
    assert report.figures["worst_group_utility"].value == pytest.approx(min(by_cell), abs=TOL)  # multi-label: AUC


def test_underdiagnosis_gap_is_the_no_finding_fpr_range():
    y, p, sex, age, patients = multi_label_data(5, classes=2)
    report = evaluate(y_test=y, p_test=p, kind="multi", classes=("Effusion", "No_Finding"), sex=sex, age=age,
                      n_boot=0, n_perm=0)
    threshold = report.thresholds.values[1]
    fpr = {}
    for g in ("F", "M"):
        m = (sex == g) & (y[:, 1] == 0)
        fpr[g] = np.mean(p[m, 1] >= threshold)
    assert report.figures["underdiagnosis_gap_sex"].value == pytest.approx(fpr["M"] - fpr["F"], abs=TOL)
    other = evaluate(y_test=y, p_test=p, kind="multi", classes=("Effusion", "Mass"), sex=sex, age=age, n_boot=0, n_perm=0)
    assert "underdiagnosis_gap_sex" not in other.figures


def test_curves_match_scikit_learn():
    rng = np.random.default_rng(6)
    for _ in range(5):
        y = (rng.random(300) < 0.3).astype(int)
        scores = rng.random(300)
        assert average_precision(y, scores) == pytest.approx(average_precision_score(y, scores), abs=TOL)
        precision, recall, thresholds = precision_recall_curve(y, scores)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
        assert f1_max_threshold(y, scores) == thresholds[np.argmax(f1[:-1])]
        fpr, tpr, roc_thresholds = roc_curve(y, scores)
        assert youden_threshold(y, scores) == roc_thresholds[np.argmax(tpr - fpr)]


def test_weighted_auc_sums_equal_repeating_images_and_binning_is_close():
    rng = np.random.default_rng(7)
    n = 300
    y = (rng.random((n, 2)) < 0.4).astype(np.int8)
    scores = np.round(rng.random((n, 2)), 2)  # many ties
    atoms = rng.integers(0, 3, n)
    weights = rng.integers(0, 3, (n, 4)).astype(np.float64)
    pairs = _mann_whitney_fixed(scores, y, atoms, weights, np.arange(3), np.float64)
    for b in range(4):
        repeat = np.repeat(np.arange(n), weights[:, b].astype(int))
        for c in range(2):
            total_pairs = pairs[b, c].sum()
            positives = y[repeat, c].sum()
            expected = roc_auc_score(y[repeat, c], scores[repeat, c]) * positives * (len(repeat) - positives)
            assert total_pairs == pytest.approx(expected, rel=1e-12)
            female = np.isin(atoms[repeat], [0, 1])
            sub = repeat[female]
            expected_sub = roc_auc_score(y[sub, c], scores[sub, c]) * y[sub, c].sum() * (len(sub) - y[sub, c].sum())
            assert pairs[b, c][:2, :2].sum() == pytest.approx(expected_sub, rel=1e-12)
    binned = _mann_whitney_binned(scores, y, np.arange(n), weights, atoms, np.arange(3), 512, np.float64)
    assert np.allclose(binned, pairs)  # fewer distinct scores than bins: binning is exact
    coarse = _mann_whitney_binned(scores, y, np.arange(n), weights, atoms, np.arange(3), 20, np.float64)
    assert not np.allclose(coarse, pairs)


def test_bad_input_gets_clear_errors():
    y = np.array([[1, 0], [0, 1]])
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(BenchError) as error:
        evaluate(y_test=np.array([[2, 0], [0, 1]]), p_test=p, kind="multi", classes=("a", "b"), n_boot=0, n_perm=0)
    assert str(error.value) == ERR_LABELS.format(value=2, row=0, cls="a")
    with pytest.raises(BenchError) as error:
        evaluate(y_test=y, p_test=np.array([[0.9, 1.5], [0.2, 0.8]]), kind="multi", classes=("a", "b"), n_boot=0, n_perm=0)
    assert str(error.value) == ERR_PROBABILITIES.format(value=1.5, row=0, cls="b")
    with pytest.raises(BenchError) as error:
        evaluate(y_test=y, p_test=p, kind="multi", classes=("a", "b", "c"), n_boot=0, n_perm=0)
    assert str(error.value) == ERR_SHAPE.format(y=(2, 2), p=(2, 2), c=3)
    with pytest.raises(BenchError) as error:
        evaluate(y_test=np.array([[1, 1], [0, 1]]), p_test=p, kind="single", classes=("a", "b"), n_boot=0, n_perm=0)
    assert str(error.value) == ERR_SINGLE.format(row=0, count=2)
