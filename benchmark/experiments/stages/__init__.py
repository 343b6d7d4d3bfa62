"""The stages of a plan, one module each, with the same two functions:

    check(job, ctx) -> outputs | None    the job's result, if it already exists (same identity); no torch
    run(job, ctx)   -> outputs           make it: calls the stage's pipeline; skips what already exists

`outputs` is plain JSON (store path, run ids and paths, ...), kept in the job's state file. Whether a result
exists is decided by the same identity the pipelines use: the embedding store's (`cached_store`), the heads'
identical runs (`identical_runs`), the fine-tuning run id and its done.json (`finished_predictions`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from benchmark.core.progress import SILENT, Progress
from benchmark.core.workdir import Workdir
from benchmark.experiments.folder import ExperimentFolder

STAGE_MODULES = {name: f"benchmark.experiments.stages.{name}"
                 for name in ("dataset", "extract", "heads", "finetune", "leaderboard", "report")}


def stage(name: str) -> ModuleType:
    return importlib.import_module(STAGE_MODULES[name])


@dataclass
class Context:
    """What a stage function works with. `memo`: this process's reads (registered manifests, tasks, runs),
    to be forgotten (`forget`) whenever a job may have changed the workdir."""

    workdir: Workdir
    folder: ExperimentFolder
    progress: Progress = SILENT
    memo: dict = field(default_factory=dict)

    def forget(self) -> None:
        self.memo.clear()

    def registered(self, dataset: str):
        """(manifest, root, digest) of a registered dataset."""
        key = ("registered", dataset)
        if key not in self.memo:
            from benchmark.core.manifest import manifest_digest
            from benchmark.datasets.registry import load_registered

            manifest, root = load_registered(self.workdir, dataset)
            self.memo[key] = (manifest, root, manifest_digest(manifest))
        return self.memo[key]

    def task(self, dataset: str, name: str, seed: int, params: dict):
        from benchmark.core.identity import canonical_json
        from benchmark.tasks import build_task

        key = ("task", dataset, name, seed, canonical_json(params))
        if key not in self.memo:
            self.memo[key] = build_task(name, self.registered(dataset)[0], seed=seed, **params)
        return self.memo[key]

    def runs(self, task: str) -> list:
        from benchmark.core.runs import list_runs

        key = ("runs", task)
        if key not in self.memo:
            self.memo[key] = list_runs(self.workdir, task)
        return self.memo[key]


def run_output(path) -> dict:
    """How a prediction run appears in a job's outputs."""
    return {"run_id": path.parent.name, "path": str(path)}
