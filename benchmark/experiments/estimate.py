"""A rough GPU time per job for `bench run --dry-run`: images x the encoder's throughput.

Throughput, in order: measured here (the newest embedding store of the encoder extracted on a CUDA device in
this workdir records images and seconds), else a reference figure for a data-centre GPU running the encoder
eagerly in mixed precision (REFERENCE_IMG_PER_S, from public benchmarks; see the note). Fine-tuning counts a
training image as three forward passes (forward + backward) and evaluates val every epoch and test once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

REFERENCE_NOTE = (
    "reference: ~2,200 img/s for ViT-B/16 (A100, fp16, eager PyTorch; facebookincubator/AITemplate examples), "
    "other architectures scaled by timm's relative inference throughput"
)
REFERENCE_IMG_PER_S = {
    "clip-vit-b16": 2200, "biomedclip": 2200, "clip-vit-b32": 7900, "chexzero": 3900, "clip-rn50": 4200,
    "clip-rn50x4": 1000, "gloria": 4200, "medclip-rn": 4200, "medclip-vit": 3300,
}
TINY_IMG_PER_S = 20000
NIH_IMAGES = 112_120
"""Images in the NIH ChestX-ray14 release."""
TRAIN_COST = 3.0
"""A training image costs about three forward passes (forward and backward)."""


@dataclass(frozen=True)
class Throughput:
    img_per_s: float
    source: str  # "measured" or "reference"


def throughput(model: str, ctx) -> Throughput | None:
    key = ("throughput", model)
    if key not in ctx.memo:
        ctx.memo[key] = _measured(model, ctx) or _reference(model)
    return ctx.memo[key]


def _measured(model: str, ctx) -> Throughput | None:
    import h5py

    folder = ctx.workdir.model_stores_dir(model)
    best = None
    for path in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
        try:
            with h5py.File(path, "r") as handle:
                timings = json.loads(handle.attrs.get("timings", "{}"))
        except (OSError, ValueError):
            continue
        if str(timings.get("device", "")).startswith("cuda") and timings.get("embed_images_s"):
            rate = timings["embedded_rows"] / timings["embed_images_s"]  # one process (rank 0's shards)
            best = Throughput(rate, "measured")
    return best


def _reference(model: str) -> Throughput | None:
    from extractors.registry import REGISTRY

    spec = REGISTRY.get(model)
    if spec is not None and spec.variant == "tiny":
        return Throughput(TINY_IMG_PER_S, "reference")
    rate = REFERENCE_IMG_PER_S.get(model)
    return Throughput(rate, "reference") if rate else None


def dataset_images(name: str, payload: dict, ctx) -> int:
    """Images of a dataset: the registered manifest's rows, else a synthetic dataset's n, else the CSV's rows, else
    the official release's."""
    from pathlib import Path

    try:
        return ctx.registered(name)[0].height
    except Exception:  # noqa: BLE001 - not registered yet: estimate from the files
        pass
    if payload.get("synthetic"):
        return payload["synthetic"]["n"]
    root = Path(payload["root"]) if payload.get("root") else None
    for csv in sorted(root.glob("Data_Entry_2017*.csv")) if root and root.is_dir() else []:
        with open(csv, "rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    return NIH_IMAGES  # the folder is not there (yet): the official release


def task_images(payload: dict, rows: int) -> dict[str, float]:
    """Images per split of a task (nih6x200: 6 x per_class; others: the dataset's rows), roughly."""
    if payload["task"] == "nih6x200":
        total = 6 * payload["task_params"].get("per_class", 200)
        fractions = payload["task_params"].get("split_fractions", (0.7, 0.1, 0.2))
    else:
        total, fractions = rows, (0.7, 0.1, 0.2)
    return dict(zip(("train", "val", "test"), (total * f for f in fractions)))


def gpu_seconds(job, plan, ctx) -> tuple[float | None, str]:
    """(GPU seconds, summed over the job's GPUs; where the throughput came from) of a GPU job; (None, why)
    when it cannot be told."""
    if not job.gpus:
        return 0.0, ""
    rate = throughput(job.payload["model"], ctx)
    if rate is None:
        return None, "no throughput known"
    dataset = plan.by_id[f"dataset/{job.payload['dataset']}"].payload
    rows = dataset_images(job.payload["dataset"], dataset, ctx)
    if job.stage == "extract":
        from benchmark.pipelines.ensemble import weights_members

        return len(weights_members(job.payload["weights"])) * rows / rate.img_per_s, rate.source  # per member
    splits = task_images(job.payload, rows)
    from benchmark.experiments.stages.finetune import request_of

    epochs = request_of(job).config.epochs
    images = epochs * (TRAIN_COST * splits["train"] + splits["val"]) + splits["test"]
    return images / rate.img_per_s, rate.source
