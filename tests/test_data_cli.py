"""`bench data synth` and `bench data check` through the CLI entry point."""

from __future__ import annotations

import json

from benchmark.cli import main


def test_synth_then_check_json(tmp_path, workdir, capsys):
    out = tmp_path / "nih"
    assert main(["data", "synth", "--out", str(out), "--n", "40", "--size", "16", "--seed", "1", "--effects", "noise:M=0.1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 40 synthetic images" in printed and "noise:M=0.1" in printed
    assert main(["data", "check", "--dataset", "nih", "--root", str(out), "--json", "--register", "synth"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["all"]["rows"] == 40
    assert sum(part["rows"] for part in summary["splits"].values()) == 40
    assert summary["all"]["sex"].get("F", 0) + summary["all"]["sex"].get("M", 0) == 40
    assert summary["report"]["csv"] == "Data_Entry_2017_v2020.csv"
    assert summary["registered"]["name"] == "synth"
    assert (workdir / "datasets" / "synth" / "manifest.parquet").is_file()


def test_check_prints_tables(synthetic_nih, capsys):
    assert main(["data", "check", "--root", str(synthetic_nih)]) == 0
    printed = capsys.readouterr().out
    for text in ("images per finding", "patients", "Pleural_Thickening", "official lists"):
        assert text in printed


def test_errors_are_reported_without_traceback(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "check", "--root", str(tmp_path / "empty")]) == 2
    error = capsys.readouterr().err
    assert "no NIH metadata file" in error and "Traceback" not in error
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--effects", "contrast:F"]) == 2
    assert "is not KIND:GROUP=SIZE" in capsys.readouterr().err
