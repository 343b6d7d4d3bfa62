"""dataset/<name>: write an nih-synthetic dataset if asked (complete or not at all), read the folder with its
adapter (nih, chexpert, mimic) and register its manifest in the workdir under the dataset's name (what `bench data check --register`
and `bench extract` do). Done when the registered manifest is the one the folder gives now."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from benchmark.core.atomic import pid_alive
from benchmark.core.errors import BenchError


def dataset_root(payload: dict, workdir) -> Path:
    """The folder of the dataset (nih-synthetic without a root: its default place in the workdir)."""
    if payload["root"]:
        return Path(payload["root"])
    synthetic = payload["synthetic"]
    return workdir.demo_dir / f"nih-synthetic-n{synthetic['n']}-px{synthetic['size']}-seed{synthetic['seed']}"


def check(job, ctx) -> dict | None:
    payload = job.payload
    root = dataset_root(payload, ctx.workdir)
    if payload["synthetic"] and not synthetic_complete(root, payload["synthetic"]):
        return None
    if not ctx.workdir.source_path(payload["name"]).is_file():
        return None
    source = json.loads(ctx.workdir.source_path(payload["name"]).read_text())
    if source.get("root") != str(root.resolve()):
        return None
    dataset = _load(payload, root)
    return _outputs(dataset) if source.get("digest") == _digest(dataset) else None


def run(job, ctx) -> dict:
    from benchmark.datasets.registry import register_dataset
    from benchmark.datasets.summary import print_summary, summarise
    from rich.console import Console

    payload = job.payload
    root = dataset_root(payload, ctx.workdir)
    if payload["synthetic"] and not synthetic_complete(root, payload["synthetic"]):
        write_synthetic_atomically(root, payload["synthetic"], ctx.progress)
    dataset = _load(payload, root)
    register_dataset(ctx.workdir, payload["name"], dataset)
    print_summary(summarise(dataset.manifest, dataset.report), Console(), title=f"{payload['name']} at {root}")
    return _outputs(dataset)


def _load(payload: dict, root: Path):
    from benchmark.datasets.adapters import load_dataset
    from benchmark.datasets.common import LoadOptions

    adapter = "nih" if payload["adapter"] == "nih-synthetic" else payload["adapter"]
    given = {key: payload.get(key) for key in ("uncertain", "views", "labeler", "mimic_iv", "race_map")}
    options = LoadOptions(val_fraction=payload["val_fraction"], seed=payload["split_seed"],
                          allow_missing_images=payload["allow_missing_images"],
                          **{key: value for key, value in given.items() if value is not None})
    return load_dataset(adapter, root, options)


def _digest(dataset) -> str:
    from benchmark.core.manifest import manifest_digest

    return manifest_digest(dataset.manifest)


def _outputs(dataset) -> dict:
    return {"root": str(dataset.root), "manifest_digest": _digest(dataset), "rows": dataset.manifest.height}


def synthetic_complete(root: Path, synthetic: dict) -> bool:
    """True when `root` holds the synthetic dataset these settings write; BenchError when it holds another."""
    from benchmark.datasets.synth import DEFAULT_EFFECTS, EFFECTS_NAME, parse_effects

    record_path = root / EFFECTS_NAME
    if not record_path.is_file():
        if root.exists() and any(root.iterdir()):
            raise BenchError(f"{root} is not empty and holds no synthetic dataset ({EFFECTS_NAME}); give the "
                             "nih-synthetic dataset another root")
        return False
    record = json.loads(record_path.read_text())
    wanted = {"n": synthetic["n"], "size": synthetic["size"], "seed": synthetic["seed"],
              "effects": [effect.text for effect in parse_effects(synthetic["effects"] or DEFAULT_EFFECTS)],
              "seed_class_share": synthetic["seed_class_share"]}
    found = {"n": record.get("n"), "size": record.get("size"), "seed": record.get("seed"),
             "effects": [effect.get("text") for effect in record.get("effects", [])],
             "seed_class_share": record.get("sampler", {}).get("seed_class_share")}
    if found != wanted:
        raise BenchError(f"{root} holds another synthetic dataset ({found}, this experiment asks for {wanted}); "
                         "give the nih-synthetic dataset another root")
    return True


def write_synthetic_atomically(root: Path, synthetic: dict, progress) -> None:
    """Write the dataset beside `root` and rename it into place: a kill leaves no half-written dataset."""
    from benchmark.datasets.synth import DEFAULT_EFFECTS, write_synthetic

    root.parent.mkdir(parents=True, exist_ok=True)
    for leftover in root.parent.glob(f".{root.name}.partial-*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    write_synthetic(partial, n=synthetic["n"], size=synthetic["size"], seed=synthetic["seed"],
                    effects=synthetic["effects"] or DEFAULT_EFFECTS, seed_class_share=synthetic["seed_class_share"],
                    progress=progress)
    if root.exists():
        root.rmdir()  # empty (checked by synthetic_complete)
    os.replace(partial, root)
    progress.note(f"wrote {synthetic['n']} synthetic images ({synthetic['size']} px, seed {synthetic['seed']}) "
                  f"to {root}")

