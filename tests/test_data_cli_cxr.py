"""`bench data synth --layout chexpert|mimic`, `bench data check --dataset chexpert|mimic`, `bench perf data`."""

from __future__ import annotations

import json

from benchmark.cli import main


def test_chexpert_synth_then_check_json_and_register(tmp_path, workdir, capsys):
    out = tmp_path / "cx"
    assert main(["data", "synth", "--layout", "chexpert", "--out", str(out), "--n", "60", "--size", "16",
                 "--effects", "underdiagnosis:Asian=0.5", "--demographics", "csv"]) == 0
    printed = capsys.readouterr().out
    assert "chexpert layout" in printed and "underdiagnosis:Asian=0.5" in printed and "--dataset chexpert" in printed
    assert (out / "CHEXPERT DEMO.csv").is_file() and (out / "CheXpert-v1.0-small" / "train.csv").is_file()
    assert main(["data", "check", "--dataset", "chexpert", "--root", str(out), "--uncertain", "ignore", "--json",
                 "--register", "cx"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["report"]["uncertain"] == "ignore" and summary["all"]["race"]
    assert sum(summary["all"]["masked"].values()) > 0 and "Pleural_Effusion" in summary["labels"]
    source = json.loads((workdir / "datasets" / "cx" / "source.json").read_text())
    assert "Pleural_Effusion" in source["labels"] and "Hernia" not in source["labels"]


def test_mimic_synth_then_check_tables(tmp_path, capsys):
    out = tmp_path / "mx"
    assert main(["data", "synth", "--layout", "mimic", "--out", str(out), "--n", "80", "--size", "16", "--metadata-only"]) == 0
    printed = capsys.readouterr().out
    assert f"--mimic-iv {out / 'mimiciv'}" in printed.replace("\n", "")
    assert main(["data", "check", "--dataset", "mimic", "--root", str(out / "mimic-cxr-jpg"), "--mimic-iv", str(out / "mimiciv"),
                 "--metadata-only"]) == 0
    printed = capsys.readouterr().out
    for text in ("race White", "insurance Medicaid", "official", "images per finding", "non-frontal images left out"):
        assert text in printed


def test_options_an_adapter_does_not_use_are_refused(synthetic_nih, tmp_path, capsys):
    assert main(["data", "check", "--dataset", "nih", "--root", str(synthetic_nih), "--uncertain", "ones"]) == 2
    assert "--uncertain do(es) not apply to dataset 'nih'" in capsys.readouterr().err
    assert main(["data", "synth", "--layout", "chexpert", "--out", str(tmp_path / "x"), "--seed-class-share", "0.1"]) == 2
    assert "--seed-class-share applies to --layout nih only" in capsys.readouterr().err
    assert main(["data", "synth", "--layout", "mimic", "--out", str(tmp_path / "y"), "--effects", "underdiagnosis:Klingon=0.2"]) == 2
    assert "unknown effect group 'Klingon'" in capsys.readouterr().err


def test_perf_data_runs_at_a_small_scale(capsys):
    assert main(["perf", "data", "--scale", "0.002", "--repeats", "1", "--cores", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert set(results) == {"chexpert", "mimic"}
    assert results["chexpert"]["images"] == 448 and results["mimic"]["images"] == 754
    assert all(r["adapter_s"] > 0 and r["raw_s"] > 0 and r["threads"] == 1 for r in results.values())


def test_mimic_refuses_a_validation_fraction_its_official_split_makes_moot(tmp_path, capsys):
    out = tmp_path / "mx"
    assert main(["data", "synth", "--layout", "mimic", "--out", str(out), "--n", "40", "--size", "16", "--metadata-only"]) == 0
    capsys.readouterr()
    assert main(["data", "check", "--dataset", "mimic", "--root", str(out / "mimic-cxr-jpg"), "--metadata-only",
                 "--val-fraction", "0.2"]) == 2
    assert "--val-fraction do(es) not apply to dataset 'mimic'" in capsys.readouterr().err
