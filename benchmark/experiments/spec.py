"""An experiment, typed: what `benchmark.experiments.parse` reads from the file and the plan expands.

Everything here is plain, frozen data (the plan copies it into picklable job descriptions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Synthetic:
    """How the plan writes an `nih-synthetic` dataset (`bench data synth`'s options)."""

    n: int = 1000
    size: int = 256
    seed: int = 0
    effects: str | None = None
    seed_class_share: float = 0.3


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset as its release is laid out (or written by the plan), registered in the workdir under `name`."""

    name: str
    adapter: str
    root: Path | None  # None: nih-synthetic at its default place in the workdir
    val_fraction: float = 0.1
    split_seed: int = 0
    allow_missing_images: bool = False
    skip_bad: bool = False
    synthetic: Synthetic | None = None
    uncertain: str | None = None  # chexpert, mimic (`benchmark.datasets.common.LoadOptions`)
    views: str | None = None
    labeler: str | None = None
    mimic_iv: Path | None = None
    race_map: Path | None = None


@dataclass(frozen=True)
class TaskEntry:
    name: str  # a task of `benchmark.tasks.TASKS`
    dataset: str
    task_seed: int = 0
    params: dict = field(default_factory=dict)  # typed by `benchmark.tasks.parse_task_params`
    test_on: tuple[str, ...] = ()  # heads tested on these datasets (empty: `dataset` only; docs/run.md)


@dataclass(frozen=True)
class EncoderEntry:
    name: str  # an encoder of `extractors.registry.REGISTRY`
    weights: str | tuple[str, ...] | None = None  # several: an ensemble's members (`benchmark.pipelines.ensemble`)
    trust_checkpoint: bool = False
    batch_size: int | None = None


@dataclass(frozen=True)
class MethodEntry:
    """An adaptation method: a head of `heads.registry` (kind "heads") or LoRA / full fine-tuning."""

    name: str
    kind: str  # "heads" or "finetune"
    params: dict = field(default_factory=dict)  # heads: estimator parameters; finetune: config overrides
    promptset: str | None = None
    protect: str | None = None  # heads: the protected attribute of the mitigation heads
    preset: str = "seed-study"
    encoders: tuple[str, ...] | None = None  # None: every encoder of the experiment

    def applies_to(self, encoder: str) -> bool:
        return self.encoders is None or encoder in self.encoders


@dataclass(frozen=True)
class Resources:
    """What one job of a stage asks for (local: GPUs and threads; Slurm: all of it)."""

    gpus: int = 0
    cpus: int | None = None
    mem_gb: int | None = None
    time_min: int = 240
    partition: str | None = None
    account: str | None = None
    slurm: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    source: Path
    description: str
    datasets: dict[str, DatasetEntry]
    tasks: dict[str, TaskEntry]
    encoders: dict[str, EncoderEntry]
    methods: dict[str, MethodEntry]
    seeds: tuple[int, ...]
    resources: dict[str, Resources]
    extract: dict
    leaderboard: dict
    report: dict = field(default_factory=dict)

    def methods_of(self, kind: str, encoder: str) -> list[MethodEntry]:
        return [method for method in self.methods.values() if method.kind == kind and method.applies_to(encoder)]
