"""Masked labels (multi-label, `--uncertain ignore`): a masked (image, class) entry is left out of that class's
figures only, never counted as a negative. Checked by simulation against the evaluation of each class on only
its unmasked rows (the engine on the reduced rows, and scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from benchmark.core.errors import BenchError
from fairness import evaluate
from fairness.passes import PreparedRun, point_pass
from fairness.thresholds import choose_thresholds, decide

CLASSES = ("A", "B", "C")


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(CLASSES))) < [0.3, 0.4, 0.5]).astype(np.float64)
    p = np.clip(0.35 * y + rng.random(y.shape) * 0.65, 0, 1)
    sex = rng.choice(["F", "M"], n)
    age = rng.uniform(20, 90, n)
    patients = [f"p{i // 2}" for i in range(n)]
    masked = rng.random(y.shape) < 0.2
    return y, p, sex, age, patients, masked


@pytest.fixture(scope="module")
def case():
    y, p, sex, age, patients, masked = _data(160, 0)
    y_val, p_val, *_, masked_val = _data(80, 1)
    y_masked = np.where(masked, np.nan, y)
    y_val_masked = np.where(masked_val, np.nan, y_val)
    return dict(y=y, p=p, sex=sex, age=age, patients=patients, masked=masked, y_val=y_val, p_val=p_val,
                masked_val=masked_val, y_masked=y_masked, y_val_masked=y_val_masked)


def _evaluate(y, p, sex, age, patients, y_val, p_val, classes=CLASSES, **options):
    options = {"n_boot": 0, "n_perm": 0, "min_group_size": 1, "min_positives": 1, **options}
    return evaluate(y_test=y, p_test=p, kind="multi", classes=classes, patient_ids=patients, sex=sex, age=age,
                    y_val=y_val, p_val=p_val, attributes=("sex",), **options)


def _class_case(case, c: int, reduced: bool):
    """Class c alone: on every row with its mask (reduced=False) or on its unmasked rows only (reduced=True)."""
    keep = ~case["masked"][:, c] if reduced else np.ones(len(case["sex"]), dtype=bool)
    keep_val = ~case["masked_val"][:, c] if reduced else np.ones(len(case["y_val"]), dtype=bool)
    y = (case["y"] if reduced else case["y_masked"])[keep][:, [c]]
    y_val = (case["y_val"] if reduced else case["y_val_masked"])[keep_val][:, [c]]
    return dict(y=y, p=case["p"][keep][:, [c]], sex=case["sex"][keep], age=case["age"][keep],
                patients=[pid for pid, k in zip(case["patients"], keep) if k], y_val=y_val,
                p_val=case["p_val"][keep_val][:, [c]], classes=(CLASSES[c],))


@pytest.mark.parametrize("c", range(len(CLASSES)))
def test_each_class_equals_its_unmasked_rows(case, c):
    """Every point figure and group metric of class c, with the other rows masked, equals the evaluation of
    class c on only its unmasked rows (thresholds chosen on the unmasked val rows), and scikit-learn's."""
    masked = _evaluate(**_class_case(case, c, reduced=False))
    reduced = _evaluate(**_class_case(case, c, reduced=True))
    assert masked.thresholds.values == pytest.approx(reduced.thresholds.values, abs=1e-12)
    for name, figure in reduced.figures.items():
        if name == "accuracy":  # exact match, per image: a masked image still counts (see the next test)
            continue
        assert masked.figures[name].value == pytest.approx(figure.value, abs=1e-9, nan_ok=True), name
    rows = {(r.attribute, r.level): r for r in reduced.groups}
    for row in masked.groups:
        other = rows[(row.attribute, row.level)]
        assert row.positives == other.positives
        for name, figure in other.metrics.items():
            if name not in ("accuracy", "count"):  # per image: a masked image still counts in its group
                assert row.metrics[name].value == pytest.approx(figure.value, abs=1e-9, nan_ok=True), (row.level, name)
    # scikit-learn on the unmasked rows
    keep = ~case["masked"][:, c]
    y, p = case["y"][keep, c], case["p"][keep, c]
    overall = masked.groups[0].metrics
    assert overall["auc"].value == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert overall["average_precision"].value == pytest.approx(average_precision_score(y, p), abs=1e-9)
    assert overall["f1"].value == pytest.approx(f1_score(y, p >= masked.thresholds.values[0]), abs=1e-9)
    assert overall["brier"].value == pytest.approx(np.mean((p - y) ** 2), abs=1e-9)
    assert masked.options["masked"] == {CLASSES[c]: int(case["masked"][:, c].sum())}


def _prepared(y, p, known, thresholds):
    from fairness.inputs import resolve_groups

    choice = resolve_groups(len(y), sex=None, age=None, columns=None, attributes=(), age_bins="binary",
                            seed_exact=False)
    return PreparedRun(y=y.astype(np.int8), p=p, decisions=decide(p, thresholds), groups=choice.groups,
                       patient_index=np.arange(len(y)), n_patients=len(y), kind="multi", classes=CLASSES,
                       attributes=[], seed_exact=False, known=known)


def test_per_class_metrics_of_a_multi_label_run(case):
    """In one three-class run, each class's F1, AUC (exact and binned), ECE and Brier equal those of the
    class's unmasked rows alone."""
    from fairness import calibration
    from fairness.stats import fixed_atom_stats

    thresholds = choose_thresholds(y_val=case["y_val_masked"], p_val=case["p_val"], kind="multi")
    known = ~case["masked"]
    full = _prepared(np.where(known, case["y"], 0), case["p"], known, thresholds)
    ones = np.ones((full.units.atom.size, 1))
    for c in range(len(CLASSES)):
        keep = known[:, c]
        one = choose_thresholds(y_val=case["y_val"][~case["masked_val"][:, c]][:, [c]],
                                p_val=case["p_val"][~case["masked_val"][:, c]][:, [c]], kind="multi")
        assert one.values[0] == thresholds.values[c]
        part = PreparedRun(y=case["y"][keep][:, [c]].astype(np.int8), p=case["p"][keep][:, [c]],
                           decisions=decide(case["p"][keep][:, [c]], one), groups=_prepared(
                               case["y"][keep], case["p"][keep], None, thresholds).groups,
                           patient_index=np.arange(keep.sum()), n_patients=int(keep.sum()), kind="multi",
                           classes=CLASSES[c:c + 1], attributes=[], seed_exact=False)
        for bins in (None, 16):
            a = full.weighted(ones, np.float64, bins).per_class
            b = part.weighted(np.ones((part.units.atom.size, 1)), np.float64, bins).per_class
            for name in ("f1", "auc", "tpr", "fpr", "brier", "accuracy", "selection_rate"):
                assert a[name][0, 0, c] == pytest.approx(b[name][0, 0, 0], abs=1e-9), (name, bins)
        stats_full = fixed_atom_stats(full.units, ones, scores=full.p, y=full.y, atom_of_image=full.groups.atom_of_image)
        stats_part = fixed_atom_stats(part.units, np.ones((part.units.atom.size, 1)), scores=part.p, y=part.y,
                                      atom_of_image=part.groups.atom_of_image)
        lay_f, lay_p = stats_full.layout, stats_part.layout
        ece_full = calibration.debiased_squared_error(stats_full.sums[0, :, lay_f["calibration"]],
                                                      stats_full.squares[0], lay_f.n_channels)
        ece_part = calibration.debiased_squared_error(stats_part.sums[0, :, lay_p["calibration"]],
                                                      stats_part.squares[0], lay_p.n_channels)
        assert ece_full[0, c] == pytest.approx(ece_part[0, 0], abs=1e-9)
        binned_full = calibration.binned_error(stats_full.sums[0, :, lay_f["calibration"]], lay_f.n_channels)
        binned_part = calibration.binned_error(stats_part.sums[0, :, lay_p["calibration"]], lay_p.n_channels)
        assert binned_full[0, c] == pytest.approx(binned_part[0, 0], abs=1e-9)


def test_a_masked_entry_never_counts(case):
    """Whatever label or probability a masked entry holds, every figure, CI and p-value is the same (with and
    without prevalence reweighting): it is neither a negative nor a positive of its class; counted as a
    negative, the figures change."""
    masked = case["masked"]
    shifted = np.where(masked, (case["p"] + 0.5) % 1.0, case["p"])
    common = dict(sex=case["sex"], age=case["age"], patients=case["patients"], y_val=case["y_val_masked"],
                  p_val=case["p_val"], n_boot=40, n_perm=40)
    for reweight in (False, True):
        plain = _evaluate(case["y_masked"], case["p"], reweight_prevalence=reweight, **common)
        moved = _evaluate(case["y_masked"], shifted, reweight_prevalence=reweight, **common)
        for name, figure in plain.figures.items():
            other = moved.figures[name]
            assert other.value == pytest.approx(figure.value, abs=1e-9, nan_ok=True), name
            assert other.ci == pytest.approx(figure.ci, abs=1e-5, nan_ok=True), name
            assert other.p_value == figure.p_value, name
        assert np.isfinite(plain.figures["auc_gap_sex"].value)
    overall = plain.groups[0]
    assert overall.count == len(case["sex"])  # images are counted as before
    assert overall.positives == {c: int(case["y"][~masked[:, i], i].sum()) for i, c in enumerate(CLASSES)}
    as_negatives = _evaluate(np.where(masked, 0.0, case["y"]), case["p"], **common)
    assert as_negatives.groups[0].metrics["auc"].value != pytest.approx(overall.metrics["auc"].value, abs=1e-6)


def test_single_label_cannot_mask():
    y = np.array([[1.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(BenchError, match="masked"):
        evaluate(y_test=y, p_test=np.array([[0.6, 0.4], [0.3, 0.7]]), kind="single", classes=("a", "b"),
                 n_boot=0, n_perm=0)
