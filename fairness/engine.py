"""`evaluate`: one run's test predictions -> figures with patient-clustered CIs, permutation p-values, groups.

The engine works on numpy arrays and knows nothing of files. Use it like fairlearn's MetricFrame, but
multi-label, with the seed study's figures and honest uncertainty:

    report = evaluate(y_test=y, p_test=p, kind="multi", classes=classes, patient_ids=pid, sex=sex, age=age,
                      y_val=y_val, p_val=p_val, n_boot=1000, seed=0)
    report.figures["f1_gap_sex"].value, report.figures["f1_gap_sex"].ci, report.figures["f1_gap_sex"].p_adj

Steps: check the inputs and choose thresholds on val (`fairness.inputs`, `fairness.thresholds`) -> prepare
the run's per-unit statistics -> point values, bootstrap replicates and permutation tests
(`fairness.passes`) -> the report's tables (`fairness.tables`). Point values are computed from the test set
as it is (weights 1), in float64. Replicates use float32 sums (exact for counts; relative error ~1e-7
elsewhere), in chunks so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from fairness.inputs import check_inputs, masked_labels, patient_codes, resolve_groups
from fairness.multitest import adjust_p_values
from fairness.passes import PreparedRun, ResamplingPlan, bootstrap_pass, permutation_tests, point_pass
from fairness.report import FairnessReport
from fairness.reweight import prevalence_weights
from fairness.tables import Limits, class_table, figure_table, group_table
from fairness.thresholds import Thresholds, choose_thresholds, decide

DEFAULT_ATTRIBUTES = ("sex", "age", "sex_age")
BOOTSTRAP = "patient-clustered, stratified by the first image's group cell, percentile CI"
REPLICATE_THREADS = 1
"""BLAS threads of the replicate passes: their matrix products are many and mid-sized ([features, units] x
[units, replicates]); on a 2-core machine shared with other work, two BLAS threads made them about twice as
slow as one (measured with `bench perf fairness`), so they run on one; several runs can run side by side."""
PERMUTATION = "patients shuffled within strata of label vector and the other attributes (prevalence-aware)"
PERMUTATION_MARGINAL = "patients shuffled among all patients (not prevalence-aware)"

__all__ = ["DEFAULT_ATTRIBUTES", "ResamplingPlan", "evaluate"]


def _thresholds(thresholds, *, y_val, p_val, kind, rule, fixed, n_classes) -> Thresholds:
    if thresholds is None:
        thresholds = choose_thresholds(y_val=y_val, p_val=p_val, kind=kind, rule=rule, fixed=fixed)
    if thresholds.kind == "multi" and not thresholds.values:
        thresholds = Thresholds(kind="multi", rule=thresholds.rule, values=(float(fixed),) * n_classes)
    return thresholds


def evaluate(
    *,
    y_test,
    p_test,
    kind: str,
    classes,
    patient_ids=None,
    sex=None,
    age=None,
    columns: dict | None = None,
    y_val=None,
    p_val=None,
    thresholds: Thresholds | None = None,
    threshold_rule: str = "f1",
    fixed_threshold: float = 0.5,
    attributes=DEFAULT_ATTRIBUTES,
    age_bins="binary",
    n_boot: int = 1000,
    n_perm: int = 1000,
    confidence: float = 0.95,
    correction: str = "holm",
    min_group_size: int = 30,
    min_positives: int = 20,
    seed: int = 0,
    seed_exact: bool = False,
    auc_bins: int | None = 512,
    plan: ResamplingPlan | None = None,
    tested_figures=None,
    stratify_permutations: bool = True,
    reweight_prevalence: bool = False,
) -> FairnessReport:
    """Evaluate one run's test predictions (see the module docstring and `fairness.registry`).

    `auc_bins`: replicates (bootstrap and permutation) compute AUC with scores rounded to this many rank
    bins (pairs inside a bin count one half), which makes them several times faster; each bootstrap
    replicate's group AUC is then shifted by the point difference exact - binned, and the permutation test
    compares binned with binned. Point values are always exact. None: exact replicates too (slow).
    `plan`: a `ResamplingPlan` shared by runs on the same test set, to reuse the bootstrap draws.
    `tested_figures`: names of the figures to test by permutation (None: every tested figure).
    `columns`: other group attributes (e.g. race, insurance), name -> one value per image (None: unknown, never a
    group); a column given as None has no values at all, and its attributes are left out like missing sex / age.
    `stratify_permutations`: shuffle the attribute within strata of labels and the other attributes
    (default; `fairness.resampling`); False shuffles it among all patients (ignores case mix).
    `min_group_size`, `min_positives`: flag figures from groups with fewer images, or with a class with
    fewer positives (or negatives), than these.
    `reweight_prevalence`: weight the test images so that every group has the test set's prevalence before
    any figure is computed (`fairness.reweight`).
    Masked labels (multi-label): NaN (or None) in `y_test` / `y_val`. A masked (image, class) entry is left out
    of that class's figures only (weight 0 for the class: counts, F1, TPR/FPR, AUC, AP, calibration, Brier,
    replicates; its threshold is chosen on the known val labels); per-image figures (group sizes) count the
    image as usual, exact-match accuracy checks its known classes. `options["masked"]`: masked test entries
    per class ({} when none).
    """
    classes = tuple(classes)
    y_test, known = masked_labels(y_test, kind, classes)
    y, p = check_inputs(y_test, p_test, kind, classes)
    thresholds = _thresholds(thresholds, y_val=y_val, p_val=p_val, kind=kind, rule=threshold_rule,
                             fixed=fixed_threshold, n_classes=len(classes))
    choice = resolve_groups(y.shape[0], sex=sex, age=age, columns=columns, attributes=attributes,
                            age_bins=age_bins, seed_exact=seed_exact)
    patients = patient_codes(patient_ids, y.shape[0])
    reweighting = prevalence_weights(y, choice.groups, kind, classes, known) if reweight_prevalence else None
    run = PreparedRun(y=y, p=p, decisions=decide(p, thresholds), groups=choice.groups,
                      patient_index=patients.index, n_patients=patients.count, kind=kind, classes=classes,
                      attributes=choice.attributes, seed_exact=seed_exact, reweighting=reweighting,
                      stratify_permutations=stratify_permutations, known=known)

    point = point_pass(run, auc_bins)
    with threadpool_limits(limits=REPLICATE_THREADS, user_api="blas"):
        boot = bootstrap_pass(run, point, n_boot=n_boot, seed=seed, auc_bins=auc_bins, plan=plan)
        p_values, adjusted = _tests(run, point, n_perm=n_perm, seed=seed, auc_bins=auc_bins, tested=tested_figures,
                                    correction=correction)
    options = {
        "attributes": choice.attributes, "attributes_without_values": choice.unavailable,
        "age_bins": age_bins if isinstance(age_bins, str) else list(age_bins), "n_boot": n_boot, "n_perm": n_perm,
        "confidence": confidence, "correction": correction, "min_group_size": min_group_size,
        "min_positives": min_positives, "seed": seed, "seed_exact": seed_exact, "auc_bins": auc_bins,
        "patients": patients.note, "bootstrap": BOOTSTRAP, "worst_group_over": run.index.cells,
        "permutation": PERMUTATION if stratify_permutations else PERMUTATION_MARGINAL,
        "reweighted": reweight_prevalence, "not_reweighted": list(reweighting.unmatched) if reweighting else [],
        "masked": {} if known is None else {c: int((~known[:, i]).sum()) for i, c in enumerate(classes)},
    }
    limits = Limits(min_group_size, min_positives)
    return FairnessReport(
        figures=figure_table(run, point, boot, p_values, adjusted, confidence=confidence, limits=limits,
                             n_perm=n_perm),
        by_class=class_table(run, point, boot, confidence=confidence),
        groups=group_table(run, point, boot, confidence=confidence, limits=limits),
        thresholds=thresholds, classes=classes, kind=kind, n_test=y.shape[0], n_patients=patients.count,
        options=options, resampling_key=boot.resampling_key,
    )


def _tests(run, point, *, n_perm: int, seed: int, auc_bins, tested, correction: str) -> tuple[dict, dict]:
    """Raw permutation p-values of the tested figures and their adjusted values (corrected within the run)."""
    if n_perm <= 0:
        return {}, {}
    p_values = permutation_tests(run, point.binned_figures, n_perm=n_perm, rng=np.random.default_rng([seed, 1]),
                                 auc_bins=auc_bins, tested=tested)
    names = [name for name in point.figures if name in p_values]
    return p_values, dict(zip(names, adjust_p_values([p_values[name] for name in names], method=correction)))
