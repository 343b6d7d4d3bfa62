"""`bench perf heads` runs end to end on a small synthetic store (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main


def test_perf_heads_reports_both_solvers_and_they_agree(capsys, tmp_path):
    code = main(["perf", "heads", "--n", "1500", "--dim", "16", "--classes", "4", "--threads", "1", "--json",
                 "--workdir", str(tmp_path)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"]["train"] + result["rows"]["val"] + result["rows"]["test"] == 1500
    assert result["threads"] == 1
    assert result["linear"]["C"] in result["C_grid"] and result["sklearn"]["C"] in result["C_grid"]
    assert result["auc_difference"] < 0.005
    assert result["speedup"] == pytest.approx(result["sklearn"]["seconds"] / result["ours_mean_seconds"])
    assert result["heads_total_seconds"] == pytest.approx(
        sum(result[head]["seconds"] for head in ("linear", "mlp", "zeroshot")))
    assert result["linear"]["test_macro_auc"] > 0.55 and result["zeroshot"]["test_macro_auc"] > 0.55
    assert 0.0 <= result["mlp"]["test_macro_auc"] <= 1.0 and result["mlp"]["epochs"] >= 1


def test_perf_heads_times_every_mitigation_row(capsys, tmp_path):
    code = main(["perf", "heads", "--n", "1500", "--dim", "16", "--classes", "3", "--threads", "1", "--json",
                 "--skip-sklearn", "--expgrad-classes", "1", "--workdir", str(tmp_path)])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["mitigation"]
    from benchmark.perf.mitigation import TIMED_HEADS

    assert set(rows) == set(TIMED_HEADS) | {"thresholds-eqodds", "expgrad-eqodds"}
    assert all(row["seconds"] > 0 for row in rows.values())
    assert rows["expgrad-eqodds"]["classes"] == 1 and rows["expgrad-eqodds"]["oracle_calls"] >= 1
    assert 0 < rows["thresholds-eqodds"]["fit_seconds"] <= rows["thresholds-eqodds"]["seconds"]
    assert "eta=" in rows["mlp-groupdro"]["detail"]
