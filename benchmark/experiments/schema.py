"""The experiment file's keys, as data: each table's keys with their type, default and meaning.

`check_table` refuses an unknown key (listing the known ones) and a value of the wrong type, naming the key
and its line (`Source.error`). docs/run.md is written from these tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.errors import BenchError
from benchmark.core.schema import EVALUATION_DEFAULTS as _BOARD
from benchmark.experiments.toml_lines import KeyLines

REQUIRED = object()
"""The default of a key that must be given."""

EXECUTORS = ("local", "slurm", "submitit-local")
STAGES = ("dataset", "extract", "heads", "finetune", "leaderboard", "report")
GPU_STAGES = ("extract", "finetune")
"""Stages that may ask for GPUs; with several (on Slurm) they run under torchrun, one process per GPU."""
DATASET_ADAPTERS = ("nih", "chexpert", "mimic", "nih-synthetic")
RELEASES = ("nih", "chexpert", "mimic")
"""Adapters that read a release as downloaded (`benchmark.datasets.adapters`); they need a root."""
RELEASE_OF = {"nih": "nih", "nih-synthetic": "nih", "chexpert": "chexpert", "mimic": "mimic"}
"""The release whose labels an adapter's dataset holds (a task's `releases` say which it can be built on)."""
FINETUNE_METHODS = ("lora", "full")


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # a key of TYPE_WORDS
    default: Any = None
    help: str = ""
    choices: tuple = ()
    minimum: float | None = None


TYPE_WORDS = {
    "text": "text in quotes",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "integers": "a list of whole numbers",
    "numbers": "a list of numbers",
    "texts": "a list of text in quotes",
    "text-or-texts": "text in quotes, or a list of them",
    "table": "a table",
    "options": "a table of text, number or true/false values",
}

EXPERIMENT = (
    Key("name", "text", None, "the experiment's name: its folder experiments/<name>/ in the workdir (default: the file name)"),
    Key("description", "text", "", "a sentence for people"),
)
DATASET = (
    Key("adapter", "text", "nih", "nih, chexpert or mimic (each release as downloaded, docs/datasets.md), or "
        "nih-synthetic (written by the plan)", choices=DATASET_ADAPTERS),
    Key("root", "text", None, "the dataset folder; $VARS and ~ expand, relative paths start at this file's folder "
        "(nih-synthetic: default <workdir>/demo/nih-synthetic-n<N>-px<SIZE>-seed<SEED>)"),
    Key("val_fraction", "number", 0.1, "share of train_val patients held out for validation", minimum=0.0),
    Key("split_seed", "integer", 0, "seed of the patient-wise validation split"),
    Key("allow_missing_images", "boolean", False, "drop (and count) rows whose image file is missing"),
    Key("skip_bad", "boolean", False, "record undecodable images as excluded instead of failing"),
)
CXR = (
    Key("uncertain", "text", None, "chexpert, mimic: uncertain labels as zeros, ones, or ignore (masked)",
        choices=("zeros", "ones", "ignore")),
    Key("views", "text", None, "chexpert, mimic: frontal (default) or all views", choices=("frontal", "all")),
    Key("labeler", "text", None, "mimic: the chexpert (default) or negbio label file", choices=("chexpert", "negbio")),
    Key("mimic_iv", "text", None, "mimic: the MIMIC-IV folder with patients and admissions (sex, age, race, insurance)"),
    Key("race_map", "text", None, "chexpert, mimic: a JSON file adding to the race / insurance map"),
)
"""Settings of the CheXpert and MIMIC-CXR adapters (refused for NIH, which has none of them)."""
SYNTHETIC = (
    Key("n", "integer", 1000, "nih-synthetic: number of images", minimum=1),
    Key("size", "integer", 256, "nih-synthetic: image side in pixels", minimum=16),
    Key("seed", "integer", 0, "nih-synthetic: random seed of the dataset"),
    Key("effects", "text", None, "nih-synthetic: planted effects as in `bench data synth --effects` (default: its default)"),
    Key("seed_class_share", "number", 0.3, "nih-synthetic: share relabelled as single-label seed-study classes",
        minimum=0.0),
)
TASK = (
    Key("dataset", "text", None, "the dataset (a [datasets.NAME] of this file; default: the only one)"),
    Key("task_seed", "integer", 0, "seed of the task's subset and split, the same for every training seed"),
    Key("params", "table", {}, "the task's parameters, e.g. { per_class = 200, split_fractions = [0.7, 0.1, 0.2] }"),
    Key("test_on", "texts", None, "datasets of this file to test the heads on (out of distribution); the task's own "
        "dataset in the list: its in-distribution runs too (default: the task's dataset only)"),
)
ENCODER = (
    Key("weights", "text-or-texts", None, "checkpoint file or folder (default: $BENCH_WEIGHTS/<encoder>/, then the HF "
        "cache); a list: the members of an ensemble (heads average their probabilities; no fine-tuning)"),
    Key("trust_checkpoint", "boolean", False, "allow a checkpoint that needs arbitrary unpickling"),
    Key("batch_size", "integer", None, "extraction batch size for this encoder (default: [extract] batch_size)",
        minimum=1),
)
ONLY_ENCODERS = Key("encoders", "texts", None, "only these encoders of the file use the method (default: all)")
HEAD_METHOD = (
    ONLY_ENCODERS,
    Key("params", "table", {}, "the head's estimator parameters (e.g. mlp: { lr = 1e-4, batch_size = 64 })"),
    Key("promptset", "text", None, "zeroshot: the prompt set in the store (default: 'default')"),
    Key("protect", "text", None, "mitigation heads: the protected attribute (sex, age, race, insurance, sex*age, ...)"),
)
FINETUNE_METHOD = (
    ONLY_ENCODERS,
    Key("preset", "text", "seed-study", "hyperparameter preset (seed-study, quick, seed-study-noaug)"),
    Key("head", "text", None, "classification head: linear or mlp", choices=("linear", "mlp")),
    Key("epochs", "integer", None, "epochs", minimum=1),
    Key("lr", "number", None, "AdamW learning rate"),
    Key("weight_decay", "number", None, "AdamW weight decay", minimum=0.0),
    Key("batch_size", "integer", None, "images per optimizer step", minimum=1),
    Key("grad_accum", "integer", None, "micro-batches per step (same arithmetic, less memory)", minimum=1),
    Key("restart_period", "integer", None, "epochs of a cosine warm-restart period", minimum=1),
    Key("patience", "integer", None, "stop after this many epochs without a better val loss (0: never)", minimum=0),
    Key("augment", "boolean", None, "train with the study's augmentations (default: the preset's)"),
    Key("lora_rank", "integer", None, "LoRA rank", minimum=1),
    Key("lora_alpha", "number", None, "LoRA alpha (default: equal to the rank)"),
    Key("lora_dropout", "number", None, "LoRA dropout", minimum=0.0),
    Key("precision", "text", None, "auto, fp32, bf16 or fp16", choices=("auto", "fp32", "bf16", "fp16")),
    Key("protect", "text", None, "mitigation: the protected attribute of balance / loss (sex, age, sex*age, ...)"),
    Key("balance", "text", None, "groups: a group-balanced sampler", choices=("none", "groups")),
    Key("loss", "text", None, "groupdro: GroupDRO's online group weights", choices=("erm", "groupdro")),
    Key("dro_step", "number", None, "GroupDRO's step size", minimum=0.0),
)
SEEDS = (
    Key("repeats", "integer", None, "training seeds 0 .. repeats-1", minimum=1),
    Key("list", "integers", None, "the training seeds, e.g. [77, 78, 79]"),
)
RESOURCES = (
    Key("gpus", "integer", 0, "GPUs per job (0: a CPU job); more than one runs under torchrun on Slurm", minimum=0),
    Key("cpus", "integer", None, "CPU cores per job (local: threads; Slurm: --cpus-per-task)", minimum=1),
    Key("mem_gb", "integer", None, "Slurm: memory per job in GB", minimum=1),
    Key("time_min", "integer", 240, "Slurm: time limit per job in minutes", minimum=1),
    Key("partition", "text", None, "Slurm partition"),
    Key("account", "text", None, "Slurm account"),
    Key("slurm", "options", {}, "further sbatch options, e.g. { qos = \"high\", constraint = \"a100\" }"),
)
EXTRACT = (
    Key("batch_size", "integer", 64, "images per forward pass", minimum=1),
    Key("workers", "integer", 0, "worker processes decoding and loading", minimum=0),
)
LEADERBOARD = (
    Key("rank_by", "text", _BOARD["rank_by"], "figure to rank by (default: worst_group_utility)"),
    Key("groups", "text", _BOARD["groups"], "group attributes"),
    Key("age_bins", "text", _BOARD["age_bins"], "binary, decades, or cut points such as 40,60,80"),
    Key("n_boot", "integer", _BOARD["n_boot"], "bootstrap replicates", minimum=0),
    Key("n_perm", "integer", _BOARD["n_perm"], "permutations per gap test (0: no tests)", minimum=0),
    Key("seed", "integer", _BOARD["seed"], "seed of the resampling"),
    Key("threshold", "text", _BOARD["threshold"], "multi-label threshold rule chosen on val",
        choices=("f1", "youden", "fixed")),
    Key("correction", "text", _BOARD["correction"], "multiple-testing correction", choices=("holm", "bh", "none")),
    Key("alpha", "number", _BOARD["alpha"], "significance level of the marks", minimum=0.0),
    Key("min_group_size", "integer", _BOARD["min_group_size"], "flag figures from smaller groups", minimum=0),
    Key("min_positives", "integer", _BOARD["min_positives"],
        "flag figures from groups with fewer positives (or negatives) of a class", minimum=0),
    Key("seed_exact", "boolean", _BOARD["seed_exact"], "reproduce the seed study's code slips"),
    Key("reweight_prevalence", "boolean", _BOARD["reweight_prevalence"],
        "weight test images to the test set's prevalence per group"),
)
"""The keys of `benchmark.core.schema.EVALUATION_DEFAULTS`, with its defaults (a test holds the keys together)."""
REPORT = (
    Key("plane_y", "text", "worst_group_utility", "y of the utility-fairness plane (worst_group_utility or a gap)"),
    Key("heatmap", "text", "f1", "per-class metric of the disease x group heatmap", choices=("f1", "auc")),
    Key("max_runs", "integer", 12, "runs shown in the per-run figures (forest plot, heatmap)", minimum=1),
    Key("formats", "texts", ["svg", "png", "pdf"], "figure files to write (svg, png, pdf; the page inlines svg)"),
)
"""`bench report`'s options for the report job (the evaluation's are [leaderboard]'s)."""
TOP_LEVEL = ("experiment", "datasets", "tasks", "encoders", "methods", "seeds", "resources", "extract", "leaderboard",
             "report")


class Source:
    """The experiment file being read: its path and where each key is written."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, KeyLines(text)

    def error(self, key_path, message: str) -> BenchError:
        line = self.lines.line_of(tuple(key_path))
        where = f"{self.path}:{line}" if line else str(self.path)
        return BenchError(f"{where}: {'.'.join(key_path)}: {message}")

    def resolve_path(self, text: str) -> Path:
        """A path from the file: $VARS and ~ expanded; relative to the file's folder. A variable that is not set
        stays as written (`unset_variables` names it)."""
        expanded = os.path.expanduser(os.path.expandvars(text))
        path = Path(expanded)
        if "$" in expanded or path.is_absolute():
            return path
        return (self.path.parent / path).resolve()


def unset_variables(path) -> list[str]:
    """The environment variables a path still names (they were not set when the file was read)."""
    import re

    return re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", str(path))


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def type_ok(kind: str, value: Any) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "text-or-texts":
        return type_ok("text", value) or type_ok("texts", value)
    if kind in ("integers", "numbers", "texts"):
        return isinstance(value, list) and all(type_ok(kind[:-1], item) for item in value)
    if kind == "options":
        return isinstance(value, dict) and all(isinstance(v, (str, int, float, bool)) for v in value.values())
    return isinstance(value, dict)


def check_table(source: Source, where: tuple[str, ...], values: Any, keys: tuple[Key, ...]) -> dict:
    """`values` (a TOML table) checked against `keys`: every key present with its default filled in."""
    if not isinstance(values, dict):
        raise source.error(where, f"expected a table, got {describe(values)}")
    known = {key.name: key for key in keys}
    for name in values:
        if name not in known:
            raise source.error(where + (name,), f"unknown key; {'.'.join(where)} takes: {', '.join(known)}")
    checked = {}
    for key in keys:
        value = values.get(key.name, key.default)
        if value is REQUIRED:
            raise source.error(where, f"needs the key {key.name!r} ({key.help})")
        if key.name in values:
            check_value(source, where + (key.name,), value, key)
        checked[key.name] = float(value) if key.type == "number" and value is not None else value
    return checked


def check_value(source: Source, path: tuple[str, ...], value: Any, key: Key) -> None:
    if not type_ok(key.type, value):
        raise source.error(path, f"expected {TYPE_WORDS[key.type]}, got {describe(value)}")
    if key.choices and value not in key.choices:
        raise source.error(path, f"{describe(value)} is not one of: {', '.join(key.choices)}")
    if key.minimum is not None and key.type in ("integer", "number") and value < key.minimum:
        raise source.error(path, f"must be at least {key.minimum:g}, got {value}")
