"""`bench run` with an ensemble: an experiment file names several weights for one encoder; the plan extracts one
store per member, the heads job writes one run per head whose probabilities average the members', a second
`bench run` finds everything cached, and fine-tuning an ensemble is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.core.errors import BenchError
from benchmark.experiments.parse import load_experiment
from run_helpers import SMALL_N, SMALL_SIZE, bench, experiment_text, write_experiment

ENSEMBLE = '[encoders.tiny-chexzero]\nweights = ["random-init:1", "random-init:2"]\n'


def test_the_file_names_an_ensemble_by_a_list_of_weights(tmp_path):
    encoders = '[encoders.tiny-chexzero]\nweights = ["random-init:1", "ckpts/b.pt"]\n[encoders.tiny-clip]\n'
    experiment = load_experiment(write_experiment(tmp_path, experiment_text(Path("/data/nih"), encoders=encoders)))
    assert experiment.encoders["tiny-chexzero"].weights == ("random-init:1", str(tmp_path / "ckpts" / "b.pt"))
    assert experiment.encoders["tiny-clip"].weights is None

    twice = '[encoders.tiny-chexzero]\nweights = ["random-init:1", "random-init:1"]\n'
    with pytest.raises(BenchError, match=r"experiment.toml:\d+: encoders.tiny-chexzero.weights: .* once"):
        load_experiment(write_experiment(tmp_path, experiment_text(Path("/data/nih"), encoders=twice)))
    lora = "[methods.zeroshot]\n[methods.lora]\nepochs = 1\n"
    with pytest.raises(BenchError, match=r"methods.lora: fine-tuning takes one checkpoint, and tiny-chexzero names"):
        load_experiment(write_experiment(tmp_path, experiment_text(Path("/data/nih"), encoders=ENSEMBLE, methods=lora)))
    with_clip = ENSEMBLE + '[encoders.tiny-clip]\n'
    lora_clip = "[methods.zeroshot]\n[methods.lora]\nepochs = 1\nencoders = [\"tiny-clip\"]\n"
    load_experiment(write_experiment(tmp_path, experiment_text(Path("/data/nih"), encoders=with_clip,
                                                               methods=lora_clip)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from benchmark.datasets.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("run-data") / "nih", n=SMALL_N, size=SMALL_SIZE, seed=0)


def test_a_plan_with_an_ensemble_runs_and_resumes(tmp_path, dataset, workdir):
    from benchmark.core.runs import list_runs
    from cache.ensemble import ensemble_digest

    exp = write_experiment(tmp_path, experiment_text(dataset, encoders=ENSEMBLE, methods="[methods.zeroshot]\n"))
    done = bench(["run", str(exp), "--no-live"], workdir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(list((workdir / "stores" / "tiny-chexzero").glob("*.h5"))) == 2
    [run] = list_runs(workdir, "nih6x200")
    assert run.record.method == "zeroshot"
    assert run.record.weights_digest == ensemble_digest(["random-init:1", "random-init:2"])
    assert [member["weights_digest"] for member in run.record.ensemble] == ["random-init:1", "random-init:2"]

    again = bench(["run", str(exp), "--no-live"], workdir)
    assert again.returncode == 0 and len(list_runs(workdir, "nih6x200")) == 1
    assert "5 cached" in " ".join(again.stdout.split())  # dataset, extract, heads, leaderboard, report
