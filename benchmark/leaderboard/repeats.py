"""Repeats: runs that differ only in their seed, grouped, with mean +- SD and the per-seed values (as MEDFAIR
reports them).

A run's configuration is everything in its run record except what a repeat may change: the seed (anywhere,
also inside hyperparameters), the run id and time, and what the run produced (chosen hyperparameters, row
counts, package versions, method details such as fit time or history). A field a record gains later (an
experiment name, for example) is part of the configuration without a change here; `experiment` kept in
`details` by an older reader counts too. Outside files have no record: NAME@SEED marks the seeds of NAME.
Several runs of one configuration and seed (a head fitted again) count once, the newest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from benchmark.core.identity import digest, finite_or_none

NOT_CONFIGURATION = frozenset({"run_id", "seed", "created", "versions", "chosen", "rows", "excluded_images",
                               "details", "schema_version"})
PER_BLOCK = frozenset({"task", "task_kind", "classes", "task_params", "dataset", "manifest_digest", "store_identity"})
"""Fields that differ between the blocks (tasks, datasets) of a comparison across blocks."""
SUMMARISED = ("utility", "worst_group_utility", "dto", "f1_gap_sex", "f1_gap_age", "auc_gap_sex", "ece_gap_sex")


def _without_seeds(value):
    if isinstance(value, dict):
        return {k: _without_seeds(v) for k, v in value.items() if k != "seed"}
    if isinstance(value, list):
        return [_without_seeds(v) for v in value]
    return value


def configuration(run, *, across_blocks: bool = False) -> dict:
    """What identifies a run's configuration (see the module docstring); `across_blocks` also drops the fields
    that name the task or dataset, so one configuration can be followed across blocks."""
    record = run.record
    if record.is_external:
        return {"external": run.base_name or run.name}
    skipped = NOT_CONFIGURATION | (PER_BLOCK if across_blocks else frozenset())
    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name not in skipped}
    if "experiment" in record.details:
        values["experiment"] = record.details["experiment"]
    return _without_seeds(finite_or_none(values))


def configuration_label(run, *, shifted: bool = False) -> str:
    """"encoder method", and `TRAIN->TEST` as in `cells.short_label`."""
    from benchmark.leaderboard.cells import dataset_shift

    if run.record.is_external:
        return run.base_name
    return f"{run.encoder} {run.method}{dataset_shift(run.record, shifted=shifted)}"


@dataclass
class RepeatGroup:
    """Runs of one configuration: its label, key (digest of the configuration) and member entries."""

    label: str
    key: str
    members: list = field(default_factory=list)

    @property
    def seeds(self) -> list:
        return [entry.run.seed for entry in self.members]

    def summary(self, name: str) -> dict | None:
        """{"mean", "sd", "values", "seeds"} of a figure over the members (SD with ddof 1); None if absent."""
        values = [entry.value(name) for entry in self.members]
        if all(not np.isfinite(v) for v in values):
            return None
        finite = np.array([v for v in values if np.isfinite(v)])
        sd = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
        return {"mean": float(np.mean(finite)), "sd": sd, "values": values, "seeds": self.seeds}


def group_repeats(entries) -> list[RepeatGroup]:
    """The configurations with two or more runs, in the order of their best-placed run."""
    from benchmark.leaderboard.cells import any_shifted

    groups: dict[str, RepeatGroup] = {}
    shifted = any_shifted(entry.run for entry in entries)
    for entry in entries:
        key = digest(configuration(entry.run))
        groups.setdefault(key, RepeatGroup(configuration_label(entry.run, shifted=shifted), key)).members.append(entry)
    for group in groups.values():  # runs of one configuration and seed (a head fitted again) are no repeats
        group.members = _newest_per_seed(group.members)
    repeated = [group for group in groups.values() if len(group.members) > 1]
    labels = [group.label for group in repeated]
    for group in repeated:
        if labels.count(group.label) > 1:  # same encoder and method, other settings: tell them apart
            group.label = f"{group.label} [{group.key[:6]}]"
    return repeated


def _newest_per_seed(members: list) -> list:
    """One member per seed, the newest run of it (`created`), in the members' order; outside files keep all."""
    newest: dict = {}
    for entry in members:
        seed = entry.run.seed
        if seed is None or entry.run.record.is_external:
            newest[("run", id(entry))] = entry
            continue
        kept = newest.get(("seed", seed))
        if kept is None or str(entry.run.record.created or "") > str(kept.run.record.created or ""):
            newest[("seed", seed)] = entry
    chosen = {id(entry) for entry in newest.values()}
    return [entry for entry in members if id(entry) in chosen]
