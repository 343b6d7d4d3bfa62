"""The plan: an experiment expanded into jobs with dependencies.

    dataset/<dataset>                                write (nih-synthetic) and register the dataset
    extract/<encoder>/<dataset>                      the frozen encoder over it, once   <- dataset
    heads/<encoder>/<task>/seed<S>                   every head method on the store     <- extract (and the
                                                     stores of the task's test_on datasets)
    finetune/<encoder>/<task>/<method>/seed<S>       LoRA / full fine-tuning              <- dataset
    leaderboard/<task>                               the experiment's runs of the task   <- heads, finetune
    report/<task>                                    its figures, tables and page        <- leaderboard

A `Job` is small, plain, picklable data: its stage, its inputs (`payload`, JSON) and what it needs (GPUs,
processes, the stage's resources). One function (`benchmark.experiments.worker.run_job`) executes any job, in
a subprocess or a submitit job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from benchmark.core.identity import digest, plain
from benchmark.experiments.spec import Experiment, MethodEntry, Resources

REPORT_MODULE = "benchmark.commands.report"
"""`bench report`; `report_jobs` adds a report job per task after its leaderboard."""


@dataclass(frozen=True)
class Job:
    id: str
    stage: str
    payload: dict
    deps: tuple[str, ...] = ()
    gpus: int = 0
    processes: int = 1
    resources: Resources = field(default_factory=Resources)

    @property
    def digest(self) -> str:
        """The job's inputs (a failure is remembered for these inputs only)."""
        return digest({"stage": self.stage, "payload": self.payload, "processes": self.processes})[:16]

    def to_json(self) -> dict:
        return plain(self)

    @classmethod
    def from_json(cls, values: dict) -> "Job":
        values = dict(values)
        values["deps"] = tuple(values.get("deps", ()))
        values["resources"] = Resources(**values.get("resources", {}))
        return cls(**values)


@dataclass
class Plan:
    experiment: str
    jobs: list[Job]  # in an order where every job comes after its dependencies

    def __post_init__(self) -> None:
        self.by_id = {job.id: job for job in self.jobs}
        self.dependents: dict[str, list[str]] = {job.id: [] for job in self.jobs}
        for job in self.jobs:
            for dep in job.deps:
                self.dependents[dep].append(job.id)

    def __len__(self) -> int:
        return len(self.jobs)

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "jobs": [job.to_json() for job in self.jobs]}

    @classmethod
    def from_json(cls, values: dict) -> "Plan":
        return cls(values["experiment"], [Job.from_json(job) for job in values["jobs"]])


def expand(experiment: Experiment, *, distributed: bool = False) -> Plan:
    """The plan of `experiment`. `distributed`: jobs of extract and finetune with several GPUs run under
    torchrun (Slurm); otherwise every GPU job takes one device (the local executor)."""
    builder = _Builder(experiment, distributed)
    used = sorted({name for task in experiment.tasks.values() for name in (task.dataset, *task.test_on)})
    for name in used:
        builder.add("dataset", f"dataset/{name}", _dataset_payload(experiment, name), ())
    for encoder in experiment.encoders.values():
        for name in used:
            builder.add("extract", f"extract/{encoder.name}/{name}", _extract_payload(experiment, encoder, name),
                        (f"dataset/{name}",))
    for task in experiment.tasks.values():
        made = builder.adaptation_jobs(task)
        leaderboard = builder.add("leaderboard", f"leaderboard/{task.name}",
                                  {"task": task.name, "experiment": experiment.name,
                                   "options": dict(experiment.leaderboard)}, tuple(made))
        for job in report_jobs(experiment, task.name, leaderboard):
            builder.jobs.append(job)
    return Plan(experiment.name, builder.jobs)


def report_jobs(experiment: Experiment, task: str, leaderboard: Job) -> list[Job]:
    """The report stage: one `report/<task>` job per task after its leaderboard, drawing from the data the
    leaderboard job wrote (`benchmark/experiments/stages/report.py`; `bench report --experiment NAME`)."""
    payload = {"task": task, "experiment": experiment.name, "options": plain(experiment.report)}
    return [Job(id=f"report/{task}", stage="report", payload=payload, deps=(leaderboard.id,),
                resources=experiment.resources["report"])]


class _Builder:
    def __init__(self, experiment: Experiment, distributed: bool):
        self.experiment, self.distributed = experiment, distributed
        self.jobs: list[Job] = []

    def add(self, stage: str, job_id: str, payload: dict, deps: tuple[str, ...]) -> Job:
        resources = self.experiment.resources[stage]
        gpus = resources.gpus if self.distributed else min(resources.gpus, 1)
        job = Job(id=job_id, stage=stage, payload=payload, deps=deps, gpus=gpus, processes=max(gpus, 1),
                  resources=resources)
        self.jobs.append(job)
        return job

    def adaptation_jobs(self, task) -> list[str]:
        """The heads and fine-tuning jobs of one task; returns their ids."""
        experiment, made = self.experiment, []
        for encoder in experiment.encoders.values():
            heads = experiment.methods_of("heads", encoder.name)
            for seed in experiment.seeds:
                if heads:
                    stores = dict.fromkeys((task.dataset, *task.test_on))  # test datasets' stores too
                    job = self.add("heads", f"heads/{encoder.name}/{task.name}/seed{seed}",
                                   _heads_payload(experiment, encoder, task, heads, seed),
                                   tuple(f"extract/{encoder.name}/{name}" for name in stores))
                    made.append(job.id)
                for method in experiment.methods_of("finetune", encoder.name):
                    job = self.add("finetune", f"finetune/{encoder.name}/{task.name}/{method.name}/seed{seed}",
                                   _finetune_payload(experiment, encoder, task, method, seed),
                                   (f"dataset/{task.dataset}",))
                    made.append(job.id)
        return made


def _dataset_payload(experiment: Experiment, name: str) -> dict:
    entry = experiment.datasets[name]
    return plain(dataclasses.asdict(entry))


def _extract_payload(experiment: Experiment, encoder, dataset: str) -> dict:
    entry = experiment.datasets[dataset]
    return {"model": encoder.name, "dataset": dataset, "weights": encoder.weights,
            "trust_checkpoint": encoder.trust_checkpoint,
            "batch_size": encoder.batch_size or experiment.extract["batch_size"],
            "workers": experiment.extract["workers"], "skip_bad": entry.skip_bad}


def _heads_payload(experiment: Experiment, encoder, task, heads: list[MethodEntry], seed: int) -> dict:
    promptsets = [method.promptset for method in heads if method.promptset]
    protects = [method.protect for method in heads if method.protect]
    return {"model": encoder.name, "weights": encoder.weights, "task": task.name, "dataset": task.dataset,
            "task_params": plain(task.params), "task_seed": task.task_seed, "seed": seed,
            "heads": [method.name for method in heads],
            "head_params": {method.name: plain(method.params) for method in heads if method.params},
            "promptset": promptsets[0] if promptsets else None, "experiment": experiment.name,
            **({"protect": protects[0]} if protects else {}), **({"test_on": list(task.test_on)} if task.test_on else {})}


def _finetune_payload(experiment: Experiment, encoder, task, method: MethodEntry, seed: int) -> dict:
    return {"model": encoder.name, "weights": encoder.weights, "trust_checkpoint": encoder.trust_checkpoint,
            "task": task.name, "dataset": task.dataset, "task_params": plain(task.params),
            "task_seed": task.task_seed, "method": method.name, "preset": method.preset,
            "overrides": plain(method.params), "seed": seed, "skip_bad": experiment.datasets[task.dataset].skip_bad,
            "experiment": experiment.name}
