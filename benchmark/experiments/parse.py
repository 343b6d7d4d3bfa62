"""Read an experiment file (TOML) into an `Experiment`, refusing every mistake before anything runs.

    experiment = load_experiment("experiments/seed-study.toml")

Unknown keys, wrong types, unknown encoders, tasks, methods, task parameters or head parameters, and
fine-tuning settings the presets refuse, each give one line naming the file, the line and the key. Nothing
here imports torch: checking a file is instant.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from benchmark.core.errors import BenchError
from benchmark.core.workdir import check_name
from benchmark.experiments import schema
from benchmark.experiments.schema import Key, Source, check_table
from benchmark.experiments.spec import (DatasetEntry, EncoderEntry, Experiment, MethodEntry, Resources, Synthetic,
                                        TaskEntry)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_toml(path: Path) -> tuple[dict, Source]:
    """The file's values and its `Source`; one-line BenchError when it is missing or not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"experiment file {path} not found; the shipped ones are in the experiments/ folder")
    text = path.read_text(encoding="utf-8")
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = _TOML_LINE.search(message)
        where = f"{path}:{found.group(1)}" if found else str(path)
        raise BenchError(f"{where}: not valid TOML: {_TOML_LINE.sub('', message).strip()} "
                         f"(column {found.group(2) if found else '?'})") from None
    return values, Source(path, text)


def load_experiment(path, *, overrides: dict | None = None) -> Experiment:
    """The experiment in `path` (with `overrides`, nested tables merged over the file's, e.g. by `bench demo`)."""
    values, source = read_toml(path)
    if overrides:
        values = merge(values, overrides)
    return parse_values(values, source)


def merge(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def parse_values(values: dict, source: Source) -> Experiment:
    for name in values:
        if name not in schema.TOP_LEVEL:
            raise source.error((name,), f"unknown table; an experiment file has: {', '.join(schema.TOP_LEVEL)}")
    head = check_table(source, ("experiment",), values.get("experiment", {}), schema.EXPERIMENT)
    name = head["name"] or source.path.stem
    try:
        check_name("experiment", name)
    except BenchError as error:
        raise source.error(("experiment", "name"), str(error)) from None
    datasets = {key: _dataset(source, key, table) for key, table in _named(source, values, "datasets").items()}
    tasks = {key: _task(source, key, table, datasets) for key, table in _named(source, values, "tasks").items()}
    encoders = {key: _encoder(source, key, table) for key, table in _named(source, values, "encoders").items()}
    methods = {key: _method(source, key, table) for key, table in _named(source, values, "methods").items()}
    for method in methods.values():
        _check_method_encoders(source, method, encoders)
    resources = {}
    given = values.get("resources", {})
    if not isinstance(given, dict):
        raise source.error(("resources",), f"expected tables [resources.STAGE], got {schema.describe(given)}")
    for stage, table in given.items():
        if stage not in schema.STAGES:
            raise source.error(("resources", stage), f"unknown stage; stages: {', '.join(schema.STAGES)}")
        resources[stage] = Resources(**check_table(source, ("resources", stage), table, schema.RESOURCES))
        if resources[stage].gpus and stage not in schema.GPU_STAGES:
            raise source.error(("resources", stage, "gpus"), f"the {stage} stage runs on the CPU; only "
                               f"{' and '.join(schema.GPU_STAGES)} take GPUs")
    resources = {stage: resources.get(stage, Resources()) for stage in schema.STAGES}
    return Experiment(
        name=name, source=source.path, description=head["description"], datasets=datasets, tasks=tasks,
        encoders=encoders, methods=methods, seeds=_seeds(source, values.get("seeds", {})), resources=resources,
        extract=check_table(source, ("extract",), values.get("extract", {}), schema.EXTRACT),
        leaderboard=check_table(source, ("leaderboard",), values.get("leaderboard", {}), schema.LEADERBOARD),
        report=_report(source, values.get("report", {})),
    )


def _check_method_encoders(source: Source, method: MethodEntry, encoders: dict[str, EncoderEntry]) -> None:
    """The encoders a method names are in the file; fine-tuning applies to no ensemble (one checkpoint each)."""
    for encoder in method.encoders or ():
        if encoder not in encoders:
            raise source.error(("methods", method.name, "encoders"),
                               f"{encoder!r} is not an encoder of this file ({', '.join(encoders)})")
    for entry in encoders.values():
        if method.kind == "finetune" and isinstance(entry.weights, tuple) and method.applies_to(entry.name):
            raise source.error(("methods", method.name), f"fine-tuning takes one checkpoint, and {entry.name} names an "
                               "ensemble; list the other encoders in encoders = [...] (fine-tune a member in an "
                               "experiment of its own)")


def _report(source: Source, table) -> dict:
    checked = check_table(source, ("report",), table, schema.REPORT)
    unknown = [fmt for fmt in checked["formats"] if fmt not in ("svg", "png", "pdf")]
    if unknown:
        raise source.error(("report", "formats"), f"unknown format {unknown[0]!r}; choose from svg, png, pdf")
    return checked


def _named(source: Source, values: dict, section: str) -> dict[str, Any]:
    """A table of named entries (`[section.NAME]`): required, not empty, names usable as folder names."""
    tables = values.get(section)
    if tables is None or tables == {}:
        raise source.error((section,), f"the experiment names no {section}; add a [{section}.NAME] table")
    if not isinstance(tables, dict):
        raise source.error((section,), f"expected tables [{section}.NAME], got {schema.describe(tables)}")
    for key in tables:
        try:
            check_name(section.rstrip("s"), key)
        except BenchError as error:
            raise source.error((section, key), str(error)) from None
    return tables


def _dataset(source: Source, name: str, table: Any) -> DatasetEntry:
    where = ("datasets", name)
    synthetic_keys = {key.name for key in schema.SYNTHETIC}
    adapter = table.get("adapter", "nih") if isinstance(table, dict) else "nih"
    keys = schema.DATASET + (schema.SYNTHETIC if adapter == "nih-synthetic" else ()) + \
        (schema.CXR if adapter in ("chexpert", "mimic") else ())
    if adapter != "nih-synthetic" and isinstance(table, dict):
        for key in synthetic_keys & set(table):
            raise source.error(where + (key,), "is a setting of adapter = \"nih-synthetic\", not of a release")
    if adapter in ("nih", "nih-synthetic") and isinstance(table, dict):
        for key in {key.name for key in schema.CXR} & set(table):
            raise source.error(where + (key,), "is a setting of the chexpert and mimic adapters; NIH has none")
    checked = check_table(source, where, table, keys)
    if checked["root"] is None and checked["adapter"] in schema.RELEASES:
        raise source.error(where, f"needs root = \"PATH\": the folder of the {checked['adapter']} release "
                                  "(docs/datasets.md)")
    root = source.resolve_path(checked["root"]) if checked["root"] else None
    for key in ("mimic_iv", "race_map"):
        if checked.get(key):
            checked[key] = source.resolve_path(checked[key])
    if checked["adapter"] == "nih-synthetic":
        synthetic = Synthetic(**{key: checked.pop(key) for key in synthetic_keys})
        if synthetic.effects is not None:
            from benchmark.datasets.synth import parse_effects

            try:
                parse_effects(synthetic.effects)
            except BenchError as error:
                raise source.error(where + ("effects",), str(error)) from None
    else:
        synthetic = None
    checked = {key: value for key, value in checked.items() if key not in ("root", "adapter")}
    return DatasetEntry(name=name, adapter=adapter, root=root, synthetic=synthetic, **checked)


def _task(source: Source, name: str, table: Any, datasets: dict) -> TaskEntry:
    from benchmark.tasks import TASKS, parse_task_params

    where = ("tasks", name)
    if name not in TASKS:
        raise source.error(where, f"unknown task; tasks: {', '.join(TASKS)}")
    checked = check_table(source, where, table, schema.TASK)
    dataset = checked["dataset"] or (next(iter(datasets)) if len(datasets) == 1 else None)
    if dataset is None:
        raise source.error(where, f"say which dataset with dataset = \"NAME\" (one of {', '.join(datasets)})")
    if dataset not in datasets:
        raise source.error(where + ("dataset",), f"no [datasets.{dataset}] in this file (it has {', '.join(datasets)})")
    params = {}
    for key, value in checked["params"].items():
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        try:
            params.update(parse_task_params(name, [f"{key}={text}"]))
        except BenchError as error:
            raise source.error(where + ("params", key), str(error)) from None
    test_on = _test_on(source, name, checked["test_on"], datasets)
    return TaskEntry(name=name, dataset=dataset, task_seed=checked["task_seed"], params=params, test_on=test_on)


def _test_on(source: Source, task: str, names: list | None, datasets: dict) -> tuple[str, ...]:
    """The datasets a task's heads are tested on: datasets of the file, once each, whose labels the task reads."""
    from benchmark.tasks import TASKS

    where = ("tasks", task, "test_on")
    if names is None:
        return ()
    if not names or len(set(names)) != len(names):
        raise source.error(where, "name at least one dataset, each once")
    releases = TASKS[task].releases
    everywhere = [other for other, definition in TASKS.items() if set(definition.releases) >= set(schema.RELEASES)]
    for name in names:
        if name not in datasets:
            raise source.error(where, f"{name!r} is not a dataset of this file (it has {', '.join(datasets)})")
        adapter = datasets[name].adapter
        if schema.RELEASE_OF[adapter] not in releases:
            raise source.error(where, f"task {task} cannot be tested on {name!r} (adapter {adapter}): it reads "
                               f"{' or '.join(releases)} labels; tasks on every dataset: {', '.join(everywhere)}")
    return tuple(names)


def _encoder(source: Source, name: str, table: Any) -> EncoderEntry:
    from extractors.registry import REGISTRY

    if name not in REGISTRY:
        raise source.error(("encoders", name), f"unknown encoder; `bench models` lists them: {', '.join(REGISTRY)}")
    checked = check_table(source, ("encoders", name), table, schema.ENCODER)
    if checked["weights"]:
        checked["weights"] = _weights(source, name, checked["weights"])
    return EncoderEntry(name=name, **checked)


def _weights(source: Source, name: str, weights) -> str | tuple[str, ...]:
    """Checkpoint paths resolved against the file's folder ("random-init:SEED" stays as written); a list of two or
    more: an ensemble's members."""
    from extractors.weights import RANDOM_INIT_MEMBER

    given = [weights] if isinstance(weights, str) else list(weights)
    if not given or len(set(given)) < len(given):
        raise source.error(("encoders", name, "weights"), "name one checkpoint, or each member of an ensemble once")
    paths = tuple(text if text.startswith(RANDOM_INIT_MEMBER) else str(source.resolve_path(text)) for text in given)
    return paths[0] if len(paths) == 1 else paths


def _method(source: Source, name: str, table: Any) -> MethodEntry:
    from heads.registry import HEADS

    where = ("methods", name)
    if name in HEADS:
        checked = check_table(source, where, table, schema.HEAD_METHOD)
        if checked["promptset"] is not None and HEADS[name].kind != "zeroshot":
            raise source.error(where + ("promptset",), "only the zeroshot head reads a prompt set")
        settable = {key: Key(key, kind) for key, kind in HEADS[name].settable.items()}
        for key, value in checked["params"].items():
            if key not in settable:
                raise source.error(where + ("params", key),
                                   f"head {name} has no such parameter; it takes: {', '.join(settable) or 'none'}")
            schema.check_value(source, where + ("params", key), value, settable[key])
        if checked["protect"] is not None and HEADS[name].mitigation is None:
            raise source.error(where + ("protect",), "only the mitigation heads take a protected attribute")
        return MethodEntry(name=name, kind="heads", params=checked["params"], promptset=checked["promptset"],
                           protect=checked["protect"], encoders=_tuple(checked["encoders"]))
    if name not in schema.FINETUNE_METHODS:
        known = ", ".join([*HEADS, *schema.FINETUNE_METHODS])
        raise source.error(where, f"unknown method; methods: {known}")
    from benchmark.finetune.config import PRESETS

    checked = check_table(source, where, table, schema.FINETUNE_METHOD)
    preset, only = checked.pop("preset"), _tuple(checked.pop("encoders"))
    if preset not in PRESETS:
        raise source.error(where + ("preset",), f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    overrides = {key: value for key, value in checked.items() if value is not None}
    method = MethodEntry(name=name, kind="finetune", params=overrides, preset=preset, encoders=only)
    try:
        finetune_config(method, seed=0)
    except BenchError as error:
        raise source.error(where, str(error)) from None
    return method


def _tuple(values: list | None) -> tuple | None:
    return None if values is None else tuple(values)


def finetune_config(method: MethodEntry, *, seed: int):
    """The `FineTuneConfig` of a fine-tuning method for one training seed."""
    import dataclasses

    from benchmark.finetune.config import NO_AUGMENTATION, make_config

    params = dict(method.params)
    augment, patience = params.pop("augment", None), params.pop("patience", None)
    config = make_config(method.preset, method=method.name, seed=seed, **params)
    changes = {}
    if patience is not None:
        changes["patience"] = patience or None
    if augment is False:
        changes["augmentation"] = NO_AUGMENTATION
    return dataclasses.replace(config, **changes) if changes else config


def _seeds(source: Source, table: Any) -> tuple[int, ...]:
    checked = check_table(source, ("seeds",), table, schema.SEEDS)
    if checked["repeats"] is not None and checked["list"] is not None:
        raise source.error(("seeds",), "give repeats = N or list = [...], not both")
    if checked["list"] is not None:
        if not checked["list"] or len(set(checked["list"])) != len(checked["list"]):
            raise source.error(("seeds", "list"), "needs at least one seed and no seed twice")
        return tuple(checked["list"])
    return tuple(range(checked["repeats"] or 1))
