"""`bench perf fairness` runs end to end on a tiny size and reports its side-by-side figures (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main


# fairlearn's own CI code takes quantiles of NaN replicates (a tiny group without positives has no AUC)
@pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")
def test_perf_fairness_smoke(capsys):
    argv = ["perf", "fairness", "--runs", "2", "--n", "400", "--classes", "2", "--n-boot", "20", "--n-perm", "10",
            "--fairlearn-boot", "1", "--fairlearn-classes", "1", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 2 and result["images"] == 400 and result["n_boot"] == 20
    assert 0 < result["patients"] < 400  # several images per patient, as in NIH
    # the printed ratio is the quotient of the two printed per-replicate costs, each from its own timing
    assert result["speedup_per_replicate"] == pytest.approx(
        result["fairlearn_ms_per_replicate"] / result["engine_ms_per_replicate"])
    assert result["engine_seconds_per_run"] == pytest.approx(result["engine_seconds_total"] / 2)
    assert result["engine_ms_per_replicate"] == pytest.approx(1e3 * result["engine_seconds_total"] / (2 * 20))
