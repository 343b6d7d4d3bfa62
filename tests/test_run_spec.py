"""Experiment files: strict reading, one-line errors naming the file, line and key; the shipped experiments."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from benchmark import cli
from benchmark.core.errors import BenchError
from benchmark.experiments.parse import load_experiment
from benchmark.experiments.toml_lines import KeyLines
from run_helpers import REPO, experiment_text, write_experiment

GOOD = experiment_text(Path("/data/nih"), methods="[methods.linear]\n[methods.mlp]\n[methods.lora]\nepochs = 2\n")

# (what to change: old text -> new text, the line that must be named, words the message must hold)
MISTAKES = {
    "unknown key": ("epochs = 2", "epoch = 2", "epoch = 2", "methods.lora.epoch: unknown key"),
    "wrong type": ("epochs = 2", 'epochs = "two"', "epochs =", 'expected a whole number, got "two"'),
    "bool is no number": ("epochs = 2", "epochs = true", "epochs =", "expected a whole number, got true"),
    "unknown encoder": ("[encoders.tiny-clip]", "[encoders.tiny-clipp]", "[encoders.tiny-clipp]",
                        "encoders.tiny-clipp: unknown encoder"),
    "unknown task": ("[tasks.nih6x200]", "[tasks.nih15]", "[tasks.nih15]", "tasks.nih15: unknown task"),
    "unknown method": ("[methods.mlp]", "[methods.svm]", "[methods.svm]", "methods.svm: unknown method"),
    "task parameter": ("per_class = 8", "per_klass = 8", "params = { per_klass", "has no parameter 'per_klass'"),
    "head parameter": ("[methods.mlp]", "[methods.mlp]\nparams = { lrr = 0.1 }", "params = { lrr",
                       "methods.mlp.params.lrr: head mlp has no such parameter"),
    "head parameter type": ("[methods.mlp]", '[methods.mlp]\nparams = { lr = "fast" }', 'params = { lr = "fast"',
                            'methods.mlp.params.lr: expected a number, got "fast"'),
    "fine-tuning setting": ("epochs = 2", 'epochs = 2\nprecision = "fp8"', "precision =", '"fp8" is not one of'),
    "unknown preset": ("epochs = 2", 'preset = "slow"', "preset =", "unknown preset 'slow'"),
    "unknown table": ("[seeds]", "[seed]", "[seed]", "seed: unknown table"),
    "seeds twice": ("list = [0]", "list = [0]\nrepeats = 2", "[seeds]", "repeats = N or list = [...], not both"),
    "CPU stage with GPUs": ("[seeds]", "[resources.heads]\ngpus = 1\n\n[seeds]", "gpus = 1", "runs on the CPU"),
    "unknown stage": ("[seeds]", "[resources.train]\ngpus = 1\n\n[seeds]", "[resources.train]", "unknown stage"),
    "method for a missing encoder": ("epochs = 2", 'epochs = 2\nencoders = ["tiny-gloria"]', "encoders =",
                                     "'tiny-gloria' is not an encoder of this file"),
    "not TOML": ("epochs = 2", "epochs = ", "epochs =", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistyped_experiment_file_gives_one_line_naming_file_line_and_key(case, tmp_path, workdir, capsys):
    old, new, marker, words = MISTAKES[case]
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    path = write_experiment(tmp_path, text)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if content.startswith(marker))

    assert cli.main(["run", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert "\n" not in message and "Traceback" not in message
    assert f"{path}:{line}:" in message
    assert words in message
    assert not (workdir / "experiments").exists()  # nothing ran, nothing was written


def test_the_good_file_reads_with_defaults_filled_in(tmp_path):
    experiment = load_experiment(write_experiment(tmp_path, GOOD))
    assert experiment.name == "small" and experiment.seeds == (0,)
    assert experiment.tasks["nih6x200"].params == {"per_class": 8} and experiment.tasks["nih6x200"].dataset == "nih"
    assert experiment.methods["lora"].kind == "finetune" and experiment.methods["lora"].params == {"epochs": 2}
    assert experiment.methods["mlp"].kind == "heads"
    assert experiment.resources["extract"].gpus == 0 and experiment.resources["finetune"].time_min == 240
    assert experiment.leaderboard["n_boot"] == 20 and experiment.leaderboard["groups"] == "sex,age,sex*age"


def test_paths_expand_variables_and_start_at_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_NIH", str(tmp_path / "nih-release"))
    text = GOOD.replace('root = "/data/nih"', 'root = "${MY_NIH}"')
    assert load_experiment(write_experiment(tmp_path, text)).datasets["nih"].root == tmp_path / "nih-release"
    text = GOOD.replace('root = "/data/nih"', 'root = "data/nih"')
    assert load_experiment(write_experiment(tmp_path, text)).datasets["nih"].root == (tmp_path / "data/nih").resolve()


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(BenchError, match="not-there.toml not found"):
        load_experiment(tmp_path / "not-there.toml")


@pytest.mark.parametrize("name,jobs", [("demo", 10), ("seed-study", 115), ("nih14-probe", 57)])
def test_the_shipped_experiments_read_and_expand(name, jobs):
    from benchmark.experiments.plan import expand

    experiment = load_experiment(REPO / "experiments" / f"{name}.toml")
    assert experiment.name == name
    assert len(expand(experiment)) == jobs


def test_the_demo_command_runs_the_demo_file():
    from benchmark.commands.demo import DEMO_DEFAULTS, DEMO_FILE, DEMO_MODELS, demo_overrides

    experiment = load_experiment(DEMO_FILE)
    assert tuple(experiment.encoders) == DEMO_MODELS
    synthetic = experiment.datasets["nih"].synthetic
    assert (synthetic.n, synthetic.size, synthetic.seed) == (DEMO_DEFAULTS["n"], DEMO_DEFAULTS["size"], DEMO_DEFAULTS["seed"])
    assert experiment.tasks["nih6x200"].params["per_class"] == DEMO_DEFAULTS["per_class"]
    changed = load_experiment(DEMO_FILE, overrides=demo_overrides(n=600, size=64, seed=3, per_class=12))
    assert changed.name != "demo" and changed.seeds == (3,) and changed.datasets["nih"].synthetic.n == 600


def test_every_settable_head_parameter_is_one_of_the_estimator_with_that_type():
    from heads.registry import HEADS

    types = {"integer": int, "number": float, "boolean": bool, "text": str, "numbers": tuple}
    for name, spec in HEADS.items():
        signature = inspect.signature(spec.estimator_class().__init__).parameters
        for key, kind in spec.settable.items():
            assert key in signature, (name, key)
            default = signature[key].default
            if default is not None:
                assert isinstance(default, types[kind]) or (kind == "number" and isinstance(default, int)), (name, key)


def test_key_lines_know_tables_dotted_and_inline_keys_and_skip_multiline_values():
    text = '[a]\nx = 1\ndoc = """\ny = 2\n"""\nlist = [\n  1,\n]\n[b.c]\nt = { p = 1, q = { r = 2 } }\n"k e y" = 3\nd.e = 4\n'
    lines = KeyLines(text)
    assert lines.line_of(("a", "x")) == 2
    assert lines.line_of(("a", "y")) == 1  # inside a string: not a key; falls back to its table
    assert lines.line_of(("b", "c", "t", "q", "r")) == 10
    assert lines.line_of(("b", "c", "k e y")) == 11
    assert lines.line_of(("b", "c", "d", "e")) == 12
    assert lines.line_of(("nowhere",)) is None


def test_an_experiment_sets_every_evaluation_option_the_command_line_has(tmp_path):
    """The [leaderboard] table takes the options of `bench leaderboard` with the same defaults, and the leaderboard
    job hands them to the board as the command does."""
    from benchmark.core.schema import EVALUATION_DEFAULTS
    from benchmark.experiments.schema import LEADERBOARD
    from benchmark.leaderboard.options import evaluation_options

    assert {key.name: key.default for key in LEADERBOARD} == EVALUATION_DEFAULTS
    experiment = load_experiment(write_experiment(tmp_path, experiment_text(None)), overrides={
        "leaderboard": {"alpha": 0.01, "min_positives": 5, "reweight_prevalence": True}})
    options = evaluation_options(dict(experiment.leaderboard))
    assert (options["alpha"], options["min_positives"], options["reweight_prevalence"]) == (0.01, 5, True)
    assert options["rank_by"] == "worst_group_utility" and options["attributes"] == "sex,age,sex*age"
    with pytest.raises(KeyError):
        evaluation_options({"n_bootstrap": 10})
