"""`bench fit-heads --protect` end to end: synthetic NIH data -> tiny-clip store -> mitigation heads -> runs that
record the attribute -> the leaderboard and `bench tradeoff` read them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.core.runs import list_runs, read_predictions
from tests.protect_fixtures import copy_of, extracted_workdir


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    return extracted_workdir(tmp_path_factory, "mitigation")


@pytest.fixture
def workdir(extracted, tmp_path):
    return copy_of(extracted, tmp_path)


def fit(workdir, *arguments):
    return main(["fit-heads", "--model", "tiny-clip", "--workdir", str(workdir), "--mlp-epochs", "2", *arguments])


def test_mitigation_heads_write_runs_that_record_the_protected_attribute(workdir, capsys):
    heads = "linear,linear-reweight,mlp-groupdro,thresholds-eqodds"
    assert fit(workdir, "--task", "nofinding", "--heads", heads, "--protect", "sex") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "must be known at test time" in out
    assert "1 class(es) not constrained, too few positives or negatives in some group: No_Finding" in out  # 5 F val images
    runs = {run.record.method: run for run in list_runs(workdir, task="nofinding")}
    assert set(runs) == set(heads.split(","))
    assert "protect" not in runs["linear"].record.hyperparameters  # the plain head stays comparable
    for name in ("linear-reweight", "mlp-groupdro", "thresholds-eqodds"):
        record = runs[name].record
        assert record.hyperparameters["protect"] == "sex"
        mitigation = record.details["mitigation"]
        assert mitigation["protect"] == "sex" and mitigation["levels"][:2] == ["F", "M"]
        assert mitigation["plain_method"] == name.split("-")[0].replace("thresholds", "linear")
        assert sum(mitigation["groups"]["F"].values()) > 0
        assert mitigation["needs_attribute_at_test"] is (name == "thresholds-eqodds")
    frame, record = read_predictions(runs["thresholds-eqodds"].path)
    if record.chosen["decision_classes"]:
        assert set(np.unique(frame["p_No_Finding"].to_numpy())) <= {0.0, 1.0}
    assert "step_size" in runs["mlp-groupdro"].record.chosen
    assert fit(workdir, "--task", "nofinding", "--heads", "linear", "--protect", "sex") == 0
    assert "--protect sex: none of these heads mitigates" in " ".join(capsys.readouterr().out.split())


def test_the_leaderboard_keeps_decisions_at_one_half_and_tradeoff_pairs_the_runs(workdir, capsys):
    assert fit(workdir, "--task", "nofinding", "--heads", "linear,thresholds-eopp", "--protect", "sex",
               "--head-param", "thresholds-eopp.min_group_positives=1") == 0
    capsys.readouterr()
    assert main(["leaderboard", "--task", "nofinding", "--workdir", str(workdir), "--format", "json",
                 "--n-boot", "50", "--n-perm", "0", "--groups", "sex,age,sex*age"]) == 0
    table = json.loads(capsys.readouterr().out)
    thresholds = {run["method"]: run["thresholds"] for run in table["runs"]}
    assert "decisions at 0.5" in thresholds["thresholds-eopp"]["rule"]
    assert thresholds["thresholds-eopp"]["values"] == [0.5]
    assert "decisions" not in thresholds["linear"]["rule"]
    assert main(["tradeoff", "--task", "nofinding", "--workdir", str(workdir), "--n-boot", "50", "--format", "json"]) == 0
    outcomes = json.loads(capsys.readouterr().out)["comparisons"]
    (outcome,) = outcomes
    assert outcome["method"] == "thresholds-eopp" and outcome["plain_method"] == "linear"
    assert outcome["gap"] == "eopp_sex" and outcome["verdict"]
    assert outcome["needs_attribute_at_test"] is True


@pytest.mark.parametrize("arguments, message", [
    (["--task", "nofinding", "--heads", "linear-reweight"], "give --protect"),
    (["--task", "nofinding", "--heads", "linear-reweight", "--protect", "race"], "has no race values"),
    (["--task", "nih6x200", "--per-class", "12", "--heads", "thresholds-eqodds", "--protect", "sex"],
     "not single-label"),
    (["--task", "nofinding", "--heads", "linear,thresholds-eqodds", "--protect", "sex*age*race"], "has no race values"),
])
def test_mitigation_requests_that_cannot_work_are_refused_in_one_line(workdir, capsys, arguments, message):
    assert fit(workdir, *arguments) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) <= 2  # one message (rich may wrap it)
    assert list_runs(workdir, task=arguments[1]) == []
