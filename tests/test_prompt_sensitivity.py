"""Zero-shot over several prompt sets: extra sets' text embeddings cached beside the stores, each figure's spread."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.core.runs import list_runs
from fairness.report import Figure
from fairness.spread import spread_across
from tests.protect_fixtures import copy_of, extracted_workdir


class _Report:
    def __init__(self, value, replicates, key="k"):
        self.figures = {"macro_auc": Figure(value=value, ci=(0, 1), replicates=np.asarray(replicates, dtype=float))}
        self.resampling_key = key


def test_the_spread_is_the_range_within_each_replicate():
    same = spread_across({"a": _Report(0.7, [0.6, 0.8, 0.7]), "b": _Report(0.7, [0.6, 0.8, 0.7])}, ["macro_auc"])
    assert same["macro_auc"].range.value == 0 and same["macro_auc"].range.ci == (0.0, 0.0)
    apart = spread_across({"a": _Report(0.7, [0.6, 0.8, 0.7]), "b": _Report(0.6, [0.5, 0.6, 0.6]),
                           "c": _Report(0.65, [0.55, 0.7, 0.65])}, ["macro_auc", "missing"])
    assert set(apart) == {"macro_auc"}
    assert apart["macro_auc"].range.value == pytest.approx(0.1)
    assert apart["macro_auc"].sd == pytest.approx(np.std([0.7, 0.6, 0.65], ddof=1))
    unpaired = spread_across({"a": _Report(0.7, [0.6], "k1"), "b": _Report(0.6, [0.5], "k2")}, ["macro_auc"])
    assert np.isnan(unpaired["macro_auc"].range.ci[0])


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    return extracted_workdir(tmp_path_factory, "prompts")


@pytest.fixture
def workdir(extracted, tmp_path):
    return copy_of(extracted, tmp_path)


def test_prompt_sensitivity_fits_one_run_per_set_and_reports_each_figures_spread(workdir, capsys):
    store = next((workdir / "stores" / "tiny-clip").glob("*.h5"))
    before = store.stat().st_mtime_ns
    assert main(["prompt-sensitivity", "--model", "tiny-clip", "--task", "nih14", "--n-boot", "50", "--format", "json",
                 "--workdir", str(workdir)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert set(result["runs"]) == {"family", "chexzero-pairs", "seed-study"}
    assert "clip-templates skipped: the same prompts as family" in captured.err  # tiny-clip's own style is CLIP's
    assert "random weights: these spreads show the tool works" in " ".join(captured.err.split())
    auc = result["figures"]["macro_auc"]
    assert set(auc["values"]) == set(result["runs"]) and auc["range"]["value"] >= 0 and auc["sd"] >= 0
    assert auc["range"]["ci"][0] <= auc["range"]["value"] <= auc["range"]["ci"][1]
    runs = {run.run_id: run.record for run in list_runs(workdir, task="nih14")}
    recorded = {runs[run_id].hyperparameters.get("promptset") for run_id in result["runs"].values()}
    assert None in recorded and any(str(label).startswith("chexzero-pairs@") for label in recorded)
    assert store.stat().st_mtime_ns == before  # the store is never rewritten
    assert len(list((workdir / "stores" / "tiny-clip" / "text").glob("*.h5"))) == 2


def test_cached_prompt_text_is_reused_without_the_encoder_and_edited_prompts_are_embedded_again(workdir, monkeypatch,
                                                                                             tmp_path):
    prompts = tmp_path / "mine.json"
    prompts.write_text(json.dumps({"style": "mine", "templates": {"pos": ["an x-ray with {}"]},
                                   "class_text": {"No_Finding": "no finding"}}))
    fit = ["fit-heads", "--model", "tiny-clip", "--task", "nofinding", "--heads", "zeroshot", "--promptset",
           str(prompts), "--workdir", str(workdir)]
    assert main(fit) == 0
    cached = list((workdir / "stores" / "tiny-clip" / "text").glob("*.h5"))
    import extractors

    def no_encoder(*args, **kwargs):
        raise AssertionError("the text tower was loaded although the prompt text is cached")

    monkeypatch.setattr(extractors, "load_encoder", no_encoder)
    assert main(fit) == 0
    prompts.write_text(json.dumps({"style": "mine", "templates": {"pos": ["a film showing {}"]},
                                   "class_text": {"No_Finding": "no finding"}}))
    monkeypatch.undo()
    assert main(fit) == 0
    assert len(list((workdir / "stores" / "tiny-clip" / "text").glob("*.h5"))) == len(cached) + 1
    labels = {run.record.hyperparameters["promptset"] for run in list_runs(workdir, task="nofinding")}
    assert len(labels) == 2 and all(label.startswith(str(prompts)) for label in labels)


def test_an_unknown_prompt_set_is_refused_in_one_line(workdir, capsys):
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "nofinding", "--heads", "zeroshot", "--promptset",
                 "nonsense", "--workdir", str(workdir)]) == 2
    error = capsys.readouterr().err
    assert "unknown prompt set 'nonsense'" in error and "chexzero-pairs" in error
    broken = workdir.parent / "broken-prompts.json"
    broken.write_text("{oops")
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "nofinding", "--heads", "zeroshot", "--promptset",
                 str(broken), "--workdir", str(workdir)]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"{broken}: cannot read the prompt file (Expecting property name" in error and "Traceback" not in error
