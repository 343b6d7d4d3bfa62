"""`bench demo` end to end, small: every stage runs and every method lands on the leaderboard."""

from __future__ import annotations

import json

from benchmark import cli
from benchmark.commands.demo import DEMO_MODELS


def test_demo_runs_every_stage_and_ranks_every_method(workdir, capsys, tmp_path):
    assert cli.main(["demo", "--n", "600", "--size", "64", "--per-class", "12"]) == 0
    out = capsys.readouterr().out
    words = " ".join(out.replace("│", " ").split())  # the rich panel wraps lines
    assert "they are not medical findings" in words
    assert "not built yet" not in out
    check_the_report(out, workdir, capsys, tmp_path)

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



def check_the_report(out: str, workdir, capsys, tmp_path) -> None:
    """The demo ends with its report's path; the page says synthetic data and random weights; `bench report
    --experiment` draws from the leaderboard job's evaluation (the same numbers, not evaluated again)."""
    from pathlib import Path

    from benchmark.commands.demo import demo_overrides

    lines = [line for line in out.splitlines() if line.strip()]
    assert "the report" in lines[-1] and "file://" in lines[-1]
    page = Path(lines[-1].split("file://", 1)[1].strip())
    assert page.is_file() and page.name == "report.html"
    text = page.read_text()
    assert "SYNTHETIC DATA" in text and "RANDOM WEIGHTS" in text and text.count('class="report-figure') == 7

    name = demo_overrides(n=600, size=64, seed=0, per_class=12)["experiment"]["name"]
    again = tmp_path / "again"
    assert cli.main(["report", "--experiment", name, "--out", str(again), "--formats", "svg"]) == 0
    assert "using the evaluation of the leaderboard job of experiment" in " ".join(capsys.readouterr().err.split())
    board = json.loads((workdir / "experiments" / name / "leaderboard" / "nih6x200.json").read_text())
    data = json.loads((again / "report-data.json").read_text())
    assert data["leaderboard"]["runs"] == board["runs"]  # the same numbers: evaluated once, by the leaderboard job

    changed = tmp_path / "changed"  # another evaluation option: evaluated again, with the experiment's others
    assert cli.main(["report", "--experiment", name, "--n-boot", "30", "--out", str(changed), "--formats", "svg"]) == 0
    assert "using the evaluation" not in capsys.readouterr().err
    ranking = json.loads((changed / "report-data.json").read_text())["leaderboard"]["ranking"]
    assert (ranking["n_boot"], ranking["n_perm"]) == (30, board["ranking"]["n_perm"])

    by_task = tmp_path / "by-task"  # the runs of a task in the workdir: the registered dataset is the demo's phantoms
    assert cli.main(["report", "--task", "nih6x200", "--out", str(by_task), "--n-boot", "20", "--n-perm", "0",
                     "--formats", "svg"]) == 0
    provenance = json.loads((by_task / "report-data.json").read_text())["provenance"]
    assert provenance["synthetic_datasets"] == ["nih"] and len(provenance["random_weights"]) == len(board["runs"])
    assert "SYNTHETIC DATA" in (by_task / "report.html").read_text()
    capsys.readouterr()
