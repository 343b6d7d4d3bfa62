"""Demographic-encoding probes: the weighted AUC, its patient-clustered CI (by simulation against a known AUC),
and `bench probe` end to end, with the probes beside each encoder in the leaderboard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from benchmark.cli import main
from fairness.encoding import attribute_auc, weighted_auc
from tests.protect_fixtures import extracted_workdir


def test_weighted_auc_equals_scikit_learns_with_sample_weights_and_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal(300), 1)  # many ties
    labels = rng.random(300) < 0.4
    weights = rng.integers(0, 4, (300, 3)).astype(float)
    got = weighted_auc(scores, labels, weights)
    expected = [roc_auc_score(labels, scores, sample_weight=weights[:, b]) for b in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def clustered_sample(rng, *, patients: int, images: int, separation: float, patient_sd: float):
    """Scores of images of patients with one binary attribute each: score = separation * level + patient effect
    + noise, so the population AUC is Phi(separation / sqrt(2 (1 + patient_sd^2)))."""
    level = rng.integers(0, 2, patients)
    effect = patient_sd * rng.standard_normal(patients)
    patient = np.repeat(np.arange(patients), images)
    score = separation * level[patient] + effect[patient] + rng.standard_normal(patient.size)
    probabilities = np.column_stack([1 - norm.cdf(score), norm.cdf(score)])
    return level[patient], probabilities, patient


def test_the_patient_clustered_interval_covers_the_true_auc_about_95_percent_of_the_time():
    separation, patient_sd = 0.8, 1.0
    truth = norm.cdf(separation / np.sqrt(2 * (1 + patient_sd**2)))
    rng = np.random.default_rng(1)
    covered = []
    for trial in range(150):
        levels, probabilities, patients = clustered_sample(rng, patients=120, images=4, separation=separation,
                                                           patient_sd=patient_sd)
        figure = attribute_auc(levels=levels, probabilities=probabilities, patient_ids=patients, n_boot=200, seed=trial)
        covered.append(figure.ci[0] <= truth <= figure.ci[1])
    assert 0.88 <= np.mean(covered) <= 0.995, np.mean(covered)


def test_more_than_two_levels_give_the_macro_one_vs_rest_auc():
    rng = np.random.default_rng(2)
    levels = rng.integers(0, 3, 200)
    probabilities = rng.dirichlet(np.ones(3), 200)
    figure = attribute_auc(levels=levels, probabilities=probabilities, patient_ids=np.arange(200), n_boot=0)
    expected = np.mean([roc_auc_score(levels == k, probabilities[:, k]) for k in range(3)])
    assert figure.value == pytest.approx(expected)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    return extracted_workdir(tmp_path_factory, "probe")


def test_bench_probe_reports_an_auc_keeps_it_and_the_leaderboard_shows_it(extracted, capsys):
    workdir = str(extracted)
    assert main(["probe", "--model", "tiny-clip", "--attribute", "sex,age", "--n-boot", "100", "--workdir", workdir]) == 0
    out = capsys.readouterr().out
    assert "sex" in out and "random weights" in out
    files = sorted((extracted / "probes" / "tiny-clip").glob("*.json"))
    records = {json.loads(path.read_text())["attribute"]: json.loads(path.read_text()) for path in files}
    assert set(records) == {"sex", "age"}
    sex = records["sex"]
    assert sex["levels"] == ["F", "M"] and 0 <= sex["auc"]["ci"][0] <= sex["auc"]["value"] <= sex["auc"]["ci"][1] <= 1
    assert sex["rows"]["test"] > 0 and sex["test_patients"] <= sex["rows"]["test"]
    # the synthetic default lowers F films' contrast: a linear probe reads sex from the embeddings
    assert sex["auc"]["ci"][0] > 0.5

    assert main(["fit-heads", "--model", "tiny-clip", "--task", "nofinding", "--heads", "linear", "--workdir", workdir]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--task", "nofinding", "--format", "json", "--n-boot", "20", "--n-perm", "0",
                 "--workdir", workdir]) == 0
    probes = json.loads(capsys.readouterr().out)["probes"]
    (entry,) = probes.values()
    assert entry["sex"]["auc"] == sex["auc"] and "age" in entry


def test_a_probe_for_an_attribute_the_dataset_lacks_is_refused_in_one_line(extracted, capsys):
    assert main(["probe", "--model", "tiny-clip", "--attribute", "race", "--workdir", str(extracted)]) == 2
    error = capsys.readouterr().err
    assert "has no race values" in error and len(error.strip().splitlines()) <= 2
