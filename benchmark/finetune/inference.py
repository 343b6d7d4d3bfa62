"""What training and prediction share: precision, losses, probabilities, and the model run over a split.

`predict_logits` runs the model over every row of a split (under torchrun each process a strided share,
gathered on every rank); `evaluate` adds the loss and the validation metric the trainer selects on.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.distributed import SINGLE, Ranks
from benchmark.core.errors import BenchError
from benchmark.finetune.data import SplitData


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Seed torch's global generators for the block and restore the caller's states afterwards."""
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise BenchError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def per_sample_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy (single-label) or the mean over classes of binary cross-entropy (multi-label); masked
    labels (negative targets, `benchmark.core.schema.MASKED`) are left out of a row's mean."""
    if kind == "single":
        return F.cross_entropy(logits, targets, reduction="none")
    observed = targets >= 0
    losses = F.binary_cross_entropy_with_logits(logits, targets.clamp_min(0), reduction="none")
    return torch.where(observed, losses, torch.zeros_like(losses)).sum(dim=1) / observed.sum(dim=1).clamp_min(1)


def probabilities(logits: np.ndarray, kind: str) -> np.ndarray:
    tensor = torch.from_numpy(logits).double()
    return (torch.softmax(tensor, dim=1) if kind == "single" else torch.sigmoid(tensor)).numpy()


def validation_metric(probs: np.ndarray, data: SplitData) -> tuple[str, float]:
    """Accuracy (single-label) or macro ROC AUC over classes with both outcomes present (multi-label)."""
    if data.kind == "single":
        return "acc", float((probs.argmax(axis=1) == data.targets).mean()) if len(probs) else math.nan
    from sklearn.metrics import roc_auc_score

    aucs = [
        roc_auc_score(data.targets[:, c], probs[:, c])
        for c in range(probs.shape[1])
        if 0 < data.targets[:, c].sum() < len(data.targets)
    ]
    return "auc", float(np.mean(aucs)) if aucs else math.nan


def predict_logits(model, data: SplitData, *, batch_size: int, device: torch.device, ranks: Ranks = SINGLE,
                   amp_dtype: torch.dtype | None = None) -> np.ndarray:
    """Logits [n, C] (float32) for every row of `data`; under torchrun each process does a strided share."""
    positions = np.arange(len(data))[ranks.rank :: ranks.world_size]
    was_training = model.training
    model.eval()
    pieces = []
    with torch.no_grad():
        for start in range(0, len(positions), batch_size):
            pixels, _ = data.read(positions[start : start + batch_size])
            with autocast(device, amp_dtype):
                logits = model(torch.from_numpy(pixels).to(device))
            pieces.append(logits.float().cpu().numpy())
    model.train(was_training)
    local = np.concatenate(pieces) if pieces else np.empty((0, model.num_classes), dtype=np.float32)
    return ranks.gather_rows(local, positions, len(data))


def evaluate(model, data: SplitData, **kwargs) -> dict:
    """Loss, validation metric and probabilities of the model over a split."""
    logits = predict_logits(model, data, **kwargs)
    targets = torch.as_tensor(data.targets)
    targets = targets.long() if data.kind == "single" else targets.float()
    losses = per_sample_loss(torch.from_numpy(logits).float(), targets, data.kind)
    probs = probabilities(logits, data.kind)
    metric_name, metric = validation_metric(probs, data)
    scores = {"loss": losses.mean().item(), "metric_name": metric_name, "metric": metric, "probs": probs}
    if data.groups is not None and len(data):
        from benchmark.finetune.groups import worst_group_loss

        scores["worst_group_loss"] = worst_group_loss(losses.numpy(), data.groups)
    return scores
