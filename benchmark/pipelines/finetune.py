"""Fine-tuning end to end: registered dataset -> task -> pixel store -> encoder + head trained -> a run.

Training reads the pixel store (`cache.pixels.PixelStore`), never the image files. The run's checkpoints
live in `workdir/finetune/<run-id>/`, where the run id is derived from everything that determines the result
(encoder, weights digest, dataset manifest, task and its parameters, hyperparameters), so running the same
request again resumes a killed run (or reports a finished one) instead of starting over. The predictions
for the val and test splits go to a new run folder in the one prediction schema, method `lora` or `full`,
so the leaderboard compares them with the cheap heads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.core.atomic import write_json
from benchmark.core.distributed import Ranks, process_group
from benchmark.core.errors import BenchError
from benchmark.core.identity import digest, plain
from benchmark.core.progress import SILENT, Progress
from benchmark.core.runs import RunRecord, list_runs, new_run_path, write_predictions
from benchmark.core.schema import EVALUATED_SPLITS, RANDOM_INIT, SPLITS
from benchmark.core.workdir import Workdir
from benchmark.finetune import checkpoint as ckpt
from benchmark.finetune.config import FineTuneConfig

if TYPE_CHECKING:  # torch-free at import, so that a plan can ask whether a run is done without loading torch
    from benchmark.finetune.trainer import TrainResult

PIPELINE_VERSION = "finetune-1"


@dataclass(frozen=True)
class FineTuneRequest:
    """What `bench finetune` asks for."""

    model: str
    task: str
    config: FineTuneConfig
    preset: str = "seed-study"
    dataset: str = "nih"
    task_params: dict = field(default_factory=dict)
    task_seed: int = 0
    device: str = "cpu"
    weights: str | None = None
    trust_checkpoint: bool = False
    resume: bool = True
    run_id: str | None = None
    skip_bad: bool = False
    experiment: str | None = None
    """The `bench run` experiment the run belongs to (recorded in its predictions; not part of its identity)."""


@dataclass(frozen=True)
class FineTuneOutcome:
    run_id: str
    run_dir: Path
    predictions: Path | None
    result: TrainResult | None
    already_done: bool = False


def finetune_run_id(description: dict) -> str:
    return f"{description['encoder']}-{description['task']}-{description['config']['method']}-{digest(description)[:12]}"


def split_data(task, manifest_rows: np.ndarray, pixels, excluded: np.ndarray | None,
               progress: Progress = SILENT, groups: np.ndarray | None = None) -> tuple[dict, dict]:
    """SplitData for train/val/test (rows into the pixel store) and the task-frame positions they cover;
    `groups`: the protected attribute's code of every task-frame row (`--protect`), or None.

    Rows whose image the pixel store excluded (unreadable, with --skip-bad) are left out and counted.
    """
    from benchmark.finetune.data import SplitData

    splits, positions, dropped = {}, {}, {}
    for split in SPLITS:
        where = np.asarray(task.split_indices(split), dtype=np.int64)
        labels = np.asarray(task.labels(split))
        rows = manifest_rows[where]
        keep = np.ones(len(rows), dtype=bool) if excluded is None else ~excluded[rows]
        dropped[split] = int((~keep).sum())
        splits[split] = SplitData(pixels, rows[keep], labels[keep], task.kind,
                                  groups=None if groups is None else groups[where][keep])
        positions[split] = where[keep]
    if any(dropped.values()):
        progress.note(f"left out images the pixel store could not decode: {dropped}")
    return splits, positions


def run_finetune(workdir, request: FineTuneRequest, progress: Progress = SILENT) -> FineTuneOutcome:
    """Fine-tune `request.model` on `request.task` and write val/test predictions; see the module docstring."""
    from benchmark.core.manifest import manifest_digest
    from benchmark.datasets.registry import load_registered
    from benchmark.tasks import build_task
    from extractors import load_encoder

    workdir = Workdir.of(workdir)
    with process_group(request.device) as (ranks, device):
        progress = progress if ranks.is_main else SILENT
        manifest, root = load_registered(workdir, request.dataset)
        task = build_task(request.task, manifest, seed=request.task_seed, **request.task_params)
        groups = _protected(task, request)
        encoder = load_encoder(request.model, weights=request.weights, trust_checkpoint=request.trust_checkpoint,
                               device=device)
        description = run_description(request, weights_digest=encoder.weights_digest,
                                      manifest_digest=manifest_digest(manifest), task=task,
                                      world_size=ranks.world_size)
        run_id = request.run_id or finetune_run_id(description)
        run_dir = workdir.finetune_run_dir(run_id)
        if ranks.is_main:
            ckpt.prepare_run_dir(run_dir, description, resume=request.resume)
        ranks.barrier()
        finished = _finished(workdir, run_id, request.task, request.resume, progress)
        if finished is not None:
            return finished
        job = _Job(request, workdir, task, encoder, description, run_id, run_dir, ranks, device, progress)
        job.groups = groups
        return job.run(manifest, root)


def _protected(task, request: FineTuneRequest):
    """The protected attribute's groups over the task rows (`--protect`), refused in one line before the encoder
    is loaded when the dataset does not record it; None without mitigation."""
    if not request.config.protect:
        return None
    from benchmark.pipelines.protect import protected_groups

    return protected_groups(task.frame, request.config.protect, dataset=request.dataset)


def run_description(request: FineTuneRequest, *, weights_digest: str, manifest_digest: str, task,
                    world_size: int) -> dict:
    """Everything that determines a fine-tuning run's result; its digest names the run (`finetune_run_id`)."""
    return {
        "pipeline": PIPELINE_VERSION, "encoder": request.model, "weights_digest": weights_digest,
        "dataset": request.dataset, "manifest_digest": manifest_digest, "task": request.task,
        "task_params": task.params, "task_seed": request.task_seed, "config": request.config.to_dict(),
        "world_size": world_size,
    }


def finished_predictions(workdir, run_id: str, task: str) -> Path | None:
    """The predictions of the finished fine-tuning run `run_id`, or None.

    Finished: its done.json names an existing prediction file, or (killed between writing its predictions and
    done.json) a prediction file of the task records it as its fine-tuning run."""
    workdir = Workdir.of(workdir)
    done_path = workdir.finetune_run_dir(run_id) / ckpt.DONE
    if done_path.exists():
        predictions = Path(json.loads(done_path.read_text())["predictions"])
        if predictions.exists():
            return predictions
    if not (workdir.finetune_run_dir(run_id) / ckpt.LAST).exists():
        return None
    written = [run.path for run in list_runs(workdir, task)
               if run.record is not None and run.record.details.get("finetune_run_id") == run_id]
    return written[-1] if written else None


def _finished(workdir: Workdir, run_id: str, task: str, resume: bool, progress: Progress) -> FineTuneOutcome | None:
    if not resume:
        return None
    run_dir = workdir.finetune_run_dir(run_id)
    predictions = finished_predictions(workdir, run_id, task)
    if predictions is None:
        return None
    if not (run_dir / ckpt.DONE).exists():
        write_json(run_dir / ckpt.DONE, {"predictions": str(predictions)})
    progress.note(f"run {run_id} already finished; predictions: {predictions} (--no-resume to redo)")
    return FineTuneOutcome(run_id, run_dir, predictions, None, already_done=True)


class _Job:
    """One fine-tuning run: its splits, model, training and prediction file."""

    def __init__(self, request, workdir, task, encoder, description, run_id, run_dir, ranks: Ranks, device,
                 progress: Progress):
        self.request, self.workdir, self.task, self.encoder = request, workdir, task, encoder
        self.description, self.run_id, self.run_dir = description, run_id, run_dir
        self.ranks, self.device, self.progress = ranks, device, progress
        self.groups = None  # benchmark.pipelines.protect.ProtectedGroups of `--protect`, over task.frame

    def run(self, manifest, root) -> FineTuneOutcome:
        from cache.pixels import PixelStore

        store = PixelStore.open_or_build(manifest, root, size=self.encoder.pixel_size, workdir=self.workdir,
                                         resize=getattr(self.encoder, "pixel_resize", "pil-bicubic"),
                                         skip_bad=self.request.skip_bad, progress=self.progress, ranks=self.ranks)
        manifest_rows = _manifest_rows(manifest, self.task.frame["image_id"].to_list())
        splits, positions = split_data(self.task, manifest_rows, store, getattr(store, "excluded", None),
                                       self.progress, groups=None if self.groups is None else self.groups.codes)
        result, scored = self.train(splits)
        predictions_path = None
        if self.ranks.is_main:
            predictions_path = self.write(positions, scored, result, splits)
            write_json(self.run_dir / ckpt.DONE, {"predictions": str(predictions_path),
                                                  "best_epoch": result.best_epoch, "epochs_run": result.epochs_run})
            self.progress.note(f"best epoch {result.best_epoch} of {result.epochs_run}"
                               + (" (stopped early)" if result.stopped_early else "")
                               + f"; predictions: {predictions_path}")
            if self.encoder.weights_tag == RANDOM_INIT:
                self.progress.warn("random-init weights: these numbers test the code path, they are no finding")
        self.ranks.barrier()
        return FineTuneOutcome(self.run_id, self.run_dir, predictions_path, result)

    def train(self, splits: dict) -> tuple[TrainResult, dict]:
        from benchmark.finetune.inference import predict_logits, probabilities, seeded
        from benchmark.finetune.model import build_model
        from benchmark.finetune.trainer import fit

        config = self.request.config
        with seeded(config.seed, self.device):
            model = build_model(self.encoder, num_classes=len(self.task.classes), config=config)
            self.describe(model, splits)
            result = fit(model, splits["train"], splits["val"], config, run_dir=self.run_dir, device=self.device,
                         ranks=self.ranks, resume=self.request.resume, progress=self.progress)
            scored = {split: probabilities(predict_logits(model, splits[split], batch_size=config.batch_size,
                                                          device=self.device, ranks=self.ranks), self.task.kind)
                      for split in EVALUATED_SPLITS}
        return result, scored

    def describe(self, model, splits: dict) -> None:
        config = self.request.config
        total = sum(p.numel() for p in self.encoder.image_tower().parameters()) + sum(
            p.numel() for p in model.head.parameters())
        trainable = model.trainable_parameter_count()
        resuming = self.request.resume and (self.run_dir / ckpt.LAST).exists()
        self.progress.note(
            f"{self.request.model} ({self.encoder.weights_tag}) {config.method} on {self.task.name}: "
            f"{trainable:,} trainable parameters of {total:,} ({100 * trainable / total:.2f}%), "
            f"{len(splits['train'])} train / {len(splits['val'])} val / {len(splits['test'])} test images"
            + (f", {self.ranks.world_size} processes" if self.ranks.distributed else "")
            + (" — resuming" if resuming else "")
        )

    def write(self, positions: dict, scored: dict, result: TrainResult, splits: dict) -> Path:
        from benchmark.core.predictions import prediction_frame

        task, config, encoder = self.task, self.request.config, self.encoder
        rows = np.concatenate([positions["val"], positions["test"]])
        frame = prediction_frame(task.frame[rows], np.concatenate([scored["val"], scored["test"]]), task.classes)
        path = new_run_path(self.workdir, task.name, self.request.model, config.method)
        record = RunRecord(
            run_id=path.parent.name, encoder=self.request.model, method=config.method, task=task.name,
            task_kind=task.kind, classes=task.classes, seed=config.seed, weights_tag=encoder.weights_tag,
            weights_digest=encoder.weights_digest, random_init=encoder.weights_tag == RANDOM_INIT,
            dataset=self.request.dataset, experiment=self.request.experiment, task_params=plain(task.params),
            hyperparameters={**config.to_dict(), "preset": self.request.preset, "world_size": self.ranks.world_size},
            chosen={"best_epoch": result.best_epoch}, manifest_digest=self.description["manifest_digest"],
            store_identity=None, rows={split: len(data) for split, data in splits.items()},
            excluded_images=int(sum(len(self.task.split_indices(s)) for s in SPLITS) - sum(map(len, splits.values()))),
            details={"trainable_parameters": result.trainable_parameters, "epochs_run": result.epochs_run,
                     "best_epoch": result.best_epoch, "history": result.history, "finetune_run_id": self.run_id,
                     **_mitigation_details(config, self.groups, positions)},
        )
        return write_predictions(path, frame, record)


MITIGATION_SOURCES = {"balance": "group-balanced sampler (Kamiran & Calders, KAIS 2012; Zhang et al., CHIL 2022)",
                      "groupdro": "GroupDRO (Sagawa et al., ICLR 2020)"}


def _mitigation_details(config: FineTuneConfig, groups, positions: dict) -> dict:
    """What a group-aware fine-tuning run records (`bench tradeoff` pairs it with the same run without it)."""
    if groups is None:
        return {}
    from benchmark.finetune.config import MITIGATION_DEFAULTS

    used = [MITIGATION_SOURCES[key] for key, on in (("balance", config.balance == "groups"),
                                                    ("groupdro", config.loss == "groupdro")) if on]
    plain_config = {key: value for key, value in config.to_dict().items() if key not in MITIGATION_DEFAULTS}
    return {"mitigation": {
        "protect": groups.attribute, "levels": list(groups.levels), "groups": groups.summary(positions),
        "needs_attribute_at_test": False, "plain_method": config.method, "plain_hyperparameters": plain_config,
        "gap": "auc_gap_{attr}", "utility": "auc", "source": "; ".join(used),
    }}


def _manifest_rows(manifest, image_ids: list[str]) -> np.ndarray:
    position = {image_id: row for row, image_id in enumerate(manifest["image_id"].to_list())}
    missing = [image_id for image_id in image_ids if image_id not in position]
    if missing:
        raise BenchError(f"task rows not in the registered manifest, e.g. {missing[0]!r}; register the dataset again")
    return np.asarray([position[image_id] for image_id in image_ids], dtype=np.int64)
