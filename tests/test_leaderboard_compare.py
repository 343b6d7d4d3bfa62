"""`bench leaderboard --compare` (paired differences) and several blocks (Friedman / Nemenyi across them),
for outside prediction files as a user gives them."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy.stats import friedmanchisquare, rankdata, studentized_range

from benchmark.cli import main
from fairness import paired_difference

from test_leaderboard_cli import CLASSES, prediction_frame

FAST = ["--n-boot", "60", "--n-perm", "0"]


def with_strength(frame: pl.DataFrame, strength: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns = []
    for cls in CLASSES:
        y = frame[f"y_{cls}"].to_numpy()
        columns.append(pl.Series(f"p_{cls}", 1 / (1 + np.exp(-(strength * (2 * y - 1) + rng.normal(0, 1, y.size))))))
    return frame.with_columns(columns)


@pytest.fixture
def blocks(tmp_path):
    """Two blocks (datasets) with the same three configurations, two seeds each."""
    specs = []
    for block, base_seed in (("nih", 0), ("chexpert", 1)):
        base = prediction_frame(base_seed, female_penalty=0.0, n=300)
        for config, strength in (("a", 1.6), ("b", 1.0), ("c", 0.4)):
            for seed in (0, 1):
                path = tmp_path / f"{block}-{config}-{seed}.csv"
                with_strength(base, strength, 10 * base_seed + 3 * seed + int(strength * 10)).write_csv(path)
                specs += ["--predictions", f"{block}:{config}@{seed}={path}"]
    return specs


def run_json(capsys, argv) -> dict:
    assert main(argv + ["--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_prints_the_paired_difference_of_every_figure(capsys, blocks):
    from benchmark import leaderboard

    document = run_json(capsys, ["leaderboard", *blocks, "--compare", "nih:b@0", "nih:a@1"] + FAST)["compare"]
    assert (document["a"], document["b"]) == ("b@0", "a@1")
    runs = leaderboard.load_external([spec for spec in blocks if spec.startswith("nih:")][1::1])
    board = leaderboard.build([r for r in runs if r.name in ("b@0", "a@1")], n_boot=60, n_perm=0)
    expected = paired_difference(board.entry("b@0").report, board.entry("a@1").report, "utility")
    row = document["differences"]["utility"]
    assert row["difference"] == pytest.approx(expected.value) and row["ci"] == pytest.approx(list(expected.ci))
    assert row["p"] == pytest.approx(expected.p_value) and row["ci"][1] < 0  # a is the stronger configuration
    assert len(document["differences"]) > 20
    against_top = run_json(capsys, ["leaderboard", *blocks, "--compare", "chexpert:c@0"] + FAST)["compare"]
    assert against_top["b"].startswith("a@")
    assert main(["leaderboard", *blocks, "--compare", "nih:b@0", "nih:b@0", "--format", "json"] + FAST) == 2
    assert "both name the run 'b@0'; name two different runs" in " ".join(capsys.readouterr().err.split())
    assert main(["leaderboard", *blocks, "--compare", "nih:b@0", "nih:a@1"] + FAST) == 0  # the rich table
    table = " ".join(capsys.readouterr().out.split())
    assert "compare b@0 with a@1" in table and "utility" in table


def test_several_blocks_get_friedman_and_nemenyi_over_the_configurations(capsys, blocks):
    document = run_json(capsys, ["leaderboard", *blocks] + FAST)
    assert [block["block"] for block in document["blocks"]] == ["nih", "chexpert"]
    across = document["across"]
    assert across["configurations"] == ["a", "b", "c"] and across["mean_rank"] == {"a": 1.0, "b": 2.0, "c": 3.0}
    ranks = np.array(across["ranks"])
    for block, row in zip(document["blocks"], ranks):
        positions = {}
        for run in block["runs"]:
            positions.setdefault(run["name"].partition("@")[0], []).append(run["position"])
        assert row.tolist() == rankdata([np.mean(positions[c]) for c in across["configurations"]]).tolist()
    expected = friedmanchisquare(*ranks.T)
    assert across["friedman"]["statistic"] == pytest.approx(expected.statistic)
    assert across["friedman"]["p"] == pytest.approx(expected.pvalue)
    k, n = 3, 2
    cd = studentized_range.ppf(0.95, k, np.inf) / np.sqrt(2) * np.sqrt(k * (k + 1) / (6 * n))
    assert across["nemenyi"]["critical_difference"] == pytest.approx(cd)
    assert cd == pytest.approx(2.343, abs=1e-3)  # Demsar 2006, Table 5: q_0.05 = 2.343 for k = 3; k(k+1)/6N = 1
    assert set(across["nemenyi"]["p"]["a"]) == {"b", "c"}
    for block in document["blocks"]:
        (config_a, *_) = block["repeats"]
        assert config_a["configuration"] == "a" and sorted(config_a["seeds"]) == [0, 1]


def test_compare_refuses_runs_on_different_test_sets(capsys, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    prediction_frame(0, female_penalty=0.0).write_csv(first)
    prediction_frame(1, female_penalty=0.0).write_csv(second)
    assert main(["leaderboard", "--predictions", f"x={first}", "--predictions", f"y={second}", "--compare", "x"]
                + FAST) == 2
    assert "different test sets" in " ".join(capsys.readouterr().err.split())
