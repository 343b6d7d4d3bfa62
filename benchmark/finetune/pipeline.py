"""`bench finetune` end to end: registered dataset -> task -> pixel cache -> encoder -> train -> predictions.

Training reads the pixel cache (`cache.pixels.PixelStore`), never the PNGs. The run's checkpoints live in
`workdir/finetune/<run-id>/`, where the run id is derived from everything that determines the result (encoder,
weights digest, dataset manifest, task and its parameters, hyperparameters), so running the same command
again resumes a killed run (or reports a finished one) instead of starting over. The predictions for the val
and test splits go to a new run folder in the heads' schema (`benchmark.predictions`), method `lora` or
`full`, so the leaderboard compares them with the cheap heads.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.console import console
from benchmark.errors import BenchError
from benchmark.finetune import checkpoint as ckpt
from benchmark.finetune.config import FineTuneConfig
from benchmark.finetune.data import SplitData
from benchmark.finetune.distributed import process_device, processes_from_environment
from benchmark.finetune.model import build_model
from benchmark.finetune.trainer import TrainResult, fit, predict_logits, probabilities, seeded

PIPELINE_VERSION = "finetune-1"


@dataclass(frozen=True)
class FineTuneOutcome:
    run_id: str
    run_dir: Path
    predictions: Path | None
    result: TrainResult | None
    already_done: bool = False


def finetune_run_id(description: dict) -> str:
    digest = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{description['encoder']}-{description['task']}-{description['config']['method']}-{digest}"


def split_data(task, manifest_rows: np.ndarray, pixels, excluded: np.ndarray | None) -> tuple[dict, dict]:
    """SplitData for train/val/test (rows into the pixel store) and the task-frame positions they cover.

    Rows whose image the pixel store excluded (unreadable, with --skip-bad) are left out and counted.
    """
    splits, positions, dropped = {}, {}, {}
    for split in ("train", "val", "test"):
        where = np.asarray(task.split_indices(split), dtype=np.int64)
        labels = np.asarray(task.labels(split))
        rows = manifest_rows[where]
        keep = np.ones(len(rows), dtype=bool) if excluded is None else ~excluded[rows]
        dropped[split] = int((~keep).sum())
        splits[split] = SplitData(pixels, rows[keep], labels[keep], task.kind)
        positions[split] = where[keep]
    if any(dropped.values()):
        console.print(f"left out images the pixel store could not decode: {dropped}")
    return splits, positions


def run_finetune(
    *,
    workdir: Path,
    model_name: str,
    task_name: str,
    config: FineTuneConfig,
    preset: str = "seed-study",
    dataset: str = "nih",
    task_params: dict | None = None,
    task_seed: int = 0,
    device: str = "cpu",
    weights: str | None = None,
    trust_checkpoint: bool = False,
    resume: bool = True,
    run_id: str | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> FineTuneOutcome:
    """Fine-tune `model_name` on `task_name` and write val/test predictions; see the module docstring."""
    from benchmark.datasets.manifest import manifest_digest
    from benchmark.datasets.registry import load_registered
    from benchmark.tasks import build_task
    from cache.pixels import PixelStore
    from extractors import load_encoder

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for but torch sees no CUDA device here; use --device cpu")
    processes = processes_from_environment(device)
    torch_device = process_device(device, processes)
    workdir = Path(workdir)

    manifest, root = load_registered(workdir, dataset)
    task = build_task(task_name, manifest, seed=task_seed, **(task_params or {}))
    encoder = load_encoder(model_name, weights=weights, trust_checkpoint=trust_checkpoint, device=str(torch_device))
    description = {
        "pipeline": PIPELINE_VERSION,
        "encoder": model_name,
        "weights_digest": encoder.weights_digest,
        "dataset": dataset,
        "manifest_digest": manifest_digest(manifest),
        "task": task_name,
        "task_params": task.params,
        "task_seed": task_seed,
        "config": config.to_dict(),
        "world_size": processes.world_size,
    }
    run_id = run_id or finetune_run_id(description)
    run_dir = workdir / "finetune" / run_id
    done_path = run_dir / ckpt.DONE
    if processes.is_main:
        ckpt.prepare_run_dir(run_dir, description, resume=resume)
    processes.barrier()
    if resume and done_path.exists():
        done = json.loads(done_path.read_text())
        if Path(done["predictions"]).exists():
            if processes.is_main:
                console.print(f"run {run_id} already finished; predictions: {done['predictions']} (--no-resume to redo)")
            return FineTuneOutcome(run_id, run_dir, Path(done["predictions"]), None, already_done=True)
    can_resume = resume and (run_dir / ckpt.LAST).exists()

    store = PixelStore.open_or_build(
        manifest, root, size=encoder.pixel_size, workdir=workdir, skip_bad=skip_bad,
        progress=progress and processes.is_main,
    )
    manifest_rows = _manifest_rows(manifest, task.frame["image_id"].to_list())
    splits, positions = split_data(task, manifest_rows, store, getattr(store, "excluded", None))

    with seeded(config.seed, torch_device):
        model = build_model(encoder, num_classes=len(task.classes), config=config)
        total = sum(parameter.numel() for parameter in encoder.image_tower().parameters()) + sum(
            parameter.numel() for parameter in model.head.parameters()
        )
        if processes.is_main:
            console.print(
                f"{model_name} ({encoder.weights_tag}) {config.method} on {task_name}: "
                f"{model.trainable_parameter_count():,} trainable parameters of {total:,} "
                f"({100 * model.trainable_parameter_count() / total:.2f}%), "
                f"{len(splits['train'])} train / {len(splits['val'])} val / {len(splits['test'])} test images"
                + (f", {processes.world_size} processes" if processes.distributed else "")
                + (" — resuming" if can_resume else ""),
                highlight=False,
            )
        result = fit(
            model, splits["train"], splits["val"], config, run_dir=run_dir, device=torch_device,
            processes=processes, resume=resume, progress=progress,
        )
        scored = {
            split: probabilities(
                predict_logits(model, splits[split], batch_size=config.batch_size, device=torch_device,
                               processes=processes),
                task.kind,
            )
            for split in ("val", "test")
        }
    predictions_path = None
    if processes.is_main:
        predictions_path = _write(
            workdir, task, positions, scored, description, config, preset, encoder, run_id, result
        )
        ckpt.write_json_atomic(
            {"predictions": str(predictions_path), "best_epoch": result.best_epoch, "epochs_run": result.epochs_run},
            done_path,
        )
        console.print(
            f"best epoch {result.best_epoch} of {result.epochs_run}"
            + (" (stopped early)" if result.stopped_early else "")
            + f"; predictions: {predictions_path}",
            highlight=False,
        )
        if encoder.weights_tag == "random-init":
            console.print("[yellow]random-init weights: these numbers test the code path, they are no finding[/]")
    processes.barrier()
    return FineTuneOutcome(run_id, run_dir, predictions_path, result)


def _manifest_rows(manifest, image_ids: list[str]) -> np.ndarray:
    position = {image_id: row for row, image_id in enumerate(manifest["image_id"].to_list())}
    missing = [image_id for image_id in image_ids if image_id not in position]
    if missing:
        raise BenchError(f"task rows not in the registered manifest, e.g. {missing[0]!r}; register the dataset again")
    return np.asarray([position[image_id] for image_id in image_ids], dtype=np.int64)


def _write(workdir, task, positions, scored, description, config, preset, encoder, run_id, result) -> Path:
    from benchmark.predictions import new_run_path, prediction_frame, write_predictions

    rows = np.concatenate([positions["val"], positions["test"]])
    probs = np.concatenate([scored["val"], scored["test"]])
    frame = prediction_frame(task.frame[rows], probs, task.classes)
    path = new_run_path(workdir, task.name, description["encoder"], config.method)
    metadata = {
        "encoder": description["encoder"],
        "weights_tag": encoder.weights_tag,
        "weights_digest": encoder.weights_digest,
        "method": config.method,
        "task": task.name,
        "task_kind": task.kind,
        "task_params": _plain(task.params),
        "classes": list(task.classes),
        "seed": config.seed,
        "hyperparameters": {**config.to_dict(), "preset": preset, "world_size": description["world_size"]},
        "chosen": {"best_epoch": result.best_epoch},
        "store_identity": None,
        "manifest_digest": description["manifest_digest"],
        "trainable_parameters": result.trainable_parameters,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "history": _plain(result.history),
        "finetune_run_id": run_id,
    }
    return write_predictions(path, frame, metadata)


def _plain(value):
    """JSON-safe copy: tuples to lists, NaN/inf to None (the prediction metadata is strict JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
