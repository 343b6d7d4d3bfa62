"""`bench run` reads CheXpert and MIMIC-CXR datasets with their adapters and settings, like `bench extract`."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.datasets.synth_mimic import MIMIC_IV, RELEASE, write_mimic_synthetic


def test_a_mimic_dataset_runs_through_a_plan(tmp_path, capsys):
    root = write_mimic_synthetic(tmp_path / "mimic", n=160, size=32, seed=1)
    experiment = tmp_path / "mimic.toml"
    experiment.write_text(f"""
[datasets.mimic]
adapter = "mimic"
root = "{root / RELEASE}"
mimic_iv = "{root / MIMIC_IV}"
uncertain = "zeros"

[tasks.nofinding]
[encoders.tiny-clip]
[methods.linear]
[seeds]
list = [0]
[leaderboard]
n_boot = 20
""")
    workdir = tmp_path / "w"
    assert main(["--workdir", str(workdir), "run", str(experiment), "--no-live"]) == 0
    source = json.loads((workdir / "datasets" / "mimic" / "source.json").read_text())
    assert "race" in source["report"] or source["rows"] > 0
    capsys.readouterr()
    assert main(["--workdir", str(workdir), "runs", "--task", "nofinding", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 1 and runs[0]["encoder"] == "tiny-clip"


@pytest.mark.parametrize("adapter, key", [("nih", "uncertain"), ("nih-synthetic", "mimic_iv")])
def test_cxr_settings_are_refused_for_nih_naming_the_key(tmp_path, adapter, key, capsys):
    experiment = tmp_path / "bad.toml"
    root = 'root = "/data/nih"\n' if adapter == "nih" else ""
    experiment.write_text(f'[datasets.nih]\nadapter = "{adapter}"\n{root}{key} = "x"\n[tasks.nih14]\n'
                          '[encoders.tiny-clip]\n[methods.linear]\n')
    assert main(["--workdir", str(tmp_path / "w"), "run", str(experiment), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"datasets.nih.{key}" in err and "NIH has none" in err and "bad.toml:" in err
