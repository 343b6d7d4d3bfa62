"""`bench demo` end to end, small: every stage runs and every method lands on the leaderboard."""

from __future__ import annotations

import json

from benchmark import cli
from benchmark.commands.demo import DEMO_MODELS


def test_demo_runs_every_stage_and_ranks_every_method(workdir, capsys):
    assert cli.main(["demo", "--n", "600", "--size", "64", "--per-class", "12"]) == 0
    out = capsys.readouterr().out
    words = " ".join(out.replace("│", " ").split())  # the rich panel wraps lines
    assert "they are not medical findings" in words
    assert "not built yet" not in out

    assert cli.main(["runs", "--task", "nih6x200", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    made = {(run["encoder"], run["method"]) for run in runs}
    expected = {(model, head) for model in DEMO_MODELS for head in ("linear", "mlp", "zeroshot")}
    assert expected | {("tiny-clip", "lora")} == made

    assert cli.main(["leaderboard", "--task", "nih6x200", "--n-boot", "50", "--n-perm", "0", "--format", "json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert len(board["runs"]) == len(made)
    for run in board["runs"]:
        assert run["n_test"] > 0
        assert {"accuracy", "macro_f1", "f1_gap_sex", "f1_gap_age"} <= set(run["figures"])
