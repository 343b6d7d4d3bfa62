"""The fine-tuning loop: seeded, checkpointed every epoch, resumable, distributed under torchrun.

One optimizer step consumes `config.batch_size` images (split into `grad_accum` micro-batches and, under
torchrun, across processes; each process scales its summed loss so the gradient is that of the mean over the
whole batch). AdamW; CosineAnnealingWarmRestarts stepped after every optimizer step (the seed study's
`scheduler.step()` per batch, so T_0 counts steps); best epoch by validation loss; optional early stopping;
bf16/fp16 autocast on CUDA. Randomness: the data order and augmentation come from generators derived from
the seed, epoch and step (`benchmark.finetune.data`); dropout and initialisation draw from torch's global
generator, which `seeded()` forks so that the caller's state is left untouched.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.console import console
from benchmark.errors import BenchError
from benchmark.finetune import checkpoint as ckpt
from benchmark.finetune.augment import apply_augmentation, draw_augmentation
from benchmark.finetune.config import FineTuneConfig
from benchmark.finetune.data import BatchPlan, SplitData, generator
from benchmark.finetune.distributed import Processes
from benchmark.finetune.model import FineTuneModel, check_gradients_reach


SHOW_LOSS_EVERY = 10
"""Steps between progress-bar loss updates (each one waits for the device)."""


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    trainable_parameters: int = 0
    stopped_early: bool = False
    resumed_after_epoch: int = 0


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


def per_sample_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy (single-label) or the mean over classes of binary cross-entropy (multi-label)."""
    if kind == "single":
        return F.cross_entropy(logits, targets, reduction="none")
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)


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


def predict_logits(
    model: FineTuneModel,
    data: SplitData,
    *,
    batch_size: int,
    device: torch.device,
    processes: Processes = Processes(),
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Logits [n, C] (float32) for every row of `data`; under torchrun each process does a strided share."""
    positions = np.arange(len(data))[processes.rank :: processes.world_size]
    was_training = model.training
    model.eval()
    pieces = []
    with torch.no_grad():
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            pixels, _ = data.read(chunk)
            pixels = torch.from_numpy(pixels).to(device)
            with _autocast(device, amp_dtype):
                logits = model(pixels)
            pieces.append(logits.float().cpu().numpy())
    model.train(was_training)
    local = np.concatenate(pieces) if pieces else np.empty((0, model.num_classes), dtype=np.float32)
    return processes.gather_rows(local, positions, len(data))


def evaluate(model, data: SplitData, **kwargs) -> dict:
    logits = predict_logits(model, data, **kwargs)
    targets = torch.as_tensor(data.targets)
    targets = targets.long() if data.kind == "single" else targets.float()
    loss = per_sample_loss(torch.from_numpy(logits).float(), targets, data.kind).mean().item()
    probs = probabilities(logits, data.kind)
    metric_name, metric = validation_metric(probs, data)
    return {"loss": loss, "metric_name": metric_name, "metric": metric, "probs": probs}


def fit(
    model: FineTuneModel,
    train: SplitData,
    val: SplitData,
    config: FineTuneConfig,
    *,
    run_dir: Path,
    device: torch.device | str = "cpu",
    processes: Processes = Processes(),
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train `model` in place; on return it holds the best epoch's weights. Checkpoints go to `run_dir`
    (prepared by `checkpoint.prepare_run_dir`); with `resume`, training continues from `last.pt` there."""
    device = torch.device(device)
    run_dir = Path(run_dir)
    model.to(device)
    plan = BatchPlan(config.batch_size, config.grad_accum, processes.world_size)
    steps = plan.steps_per_epoch(len(train))
    if steps == 0:
        raise BenchError(
            f"the training split has {len(train)} images, fewer than one batch of {config.batch_size}; "
            "lower --batch-size or use more images"
        )
    if len(val) == 0:
        raise BenchError("the validation split is empty; the best epoch is chosen on it, so it needs images")
    amp_dtype = autocast_dtype(config.precision, device)
    _freeze_unreached(model, train, device, config.method, processes)

    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=config.restart_period)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
    result = TrainResult(trainable_parameters=model.trainable_parameter_count())
    best_loss, stale, best_file = math.inf, 0, None

    last_path = run_dir / ckpt.LAST
    if resume and last_path.exists():
        state = ckpt.load_checkpoint(last_path)
        model.load_trainable_state(state["trainable"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state["rng_cuda"] is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        result.history = list(state["history"])
        result.best_epoch, best_loss, stale = state["best_epoch"], state["best_val_loss"], state["stale_epochs"]
        best_file = state["best_file"]
        result.resumed_after_epoch = len(result.history)
        if processes.is_main:
            console.print(f"resuming {run_dir.name} after epoch {result.resumed_after_epoch}")

    network = model
    if processes.distributed:
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda" and config.method == "full":
            # batch-norm statistics over the whole global batch, as in one process
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)

        device_ids = [device.index] if device.type == "cuda" else None
        network = DistributedDataParallel(model, device_ids=device_ids)

    show = progress and processes.is_main
    bar = _progress_bar(show)
    last_val = ""
    if result.history:
        last = result.history[-1]
        last_val = f"val loss {last['val_loss']:.4f}"
    with bar:
        task = bar.add_task("", total=steps, status="")
        for epoch in range(len(result.history) + 1, config.epochs + 1):
            if config.patience is not None and stale >= config.patience:
                break
            bar.reset(task, total=steps, description=f"epoch {epoch}/{config.epochs}", status="")
            train_loss = _train_epoch(
                network, model, train, config, plan, epoch, steps, optimizer, scheduler, scaler,
                device, amp_dtype, processes, bar, task, last_val,
            )
            if not math.isfinite(train_loss):
                raise BenchError(
                    f"the training loss became {train_loss} in epoch {epoch}; lower --lr or use --precision fp32 "
                    f"(checkpoints of the epochs before are in {run_dir})"
                )
            scores = evaluate(
                model, val, batch_size=config.batch_size, device=device, processes=processes, amp_dtype=amp_dtype
            )
            improved = scores["loss"] < best_loss
            if improved:
                best_loss, stale, result.best_epoch = scores["loss"], 0, epoch
                best_file = ckpt.best_name(epoch)
                if processes.is_main:
                    ckpt.save_atomic(_cpu_state(model.trainable_state()), run_dir / best_file)
            else:
                stale += 1
            last_val = f"val loss {scores['loss']:.4f} {scores['metric_name']} {scores['metric']:.3f}"
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": scores["loss"],
                scores["metric_name"]: scores["metric"],
                "lr": scheduler.get_last_lr()[0],
            }
            result.history.append(record)
            if processes.is_main:
                ckpt.save_atomic(
                    {
                        "trainable": _cpu_state(model.trainable_state()),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "rng_cpu": torch.get_rng_state(),
                        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        "history": result.history,
                        "best_epoch": result.best_epoch,
                        "best_val_loss": best_loss,
                        "stale_epochs": stale,
                        "best_file": best_file,
                    },
                    last_path,
                )
                ckpt.remove_stale_best(run_dir, best_file)
                mark = " [green]best[/]" if improved else ""
                console.print(
                    f"epoch {epoch}: train loss {train_loss:.4f}  val loss {scores['loss']:.4f}  "
                    f"val {scores['metric_name']} {scores['metric']:.4f}{mark}",
                    highlight=False,
                )
            processes.barrier()
    if best_file is None:
        raise BenchError(f"the validation loss was never finite ({result.history[-1]['val_loss']}); lower --lr")
    result.epochs_run = len(result.history)
    result.stopped_early = result.epochs_run < config.epochs
    model.load_trainable_state(ckpt.load_checkpoint(run_dir / best_file))
    model.to(device)
    return result


def _train_epoch(
    network, model, train, config, plan, epoch, steps, optimizer, scheduler, scaler,
    device, amp_dtype, processes, bar, task, last_val,
) -> float:
    model.train()
    order = plan.epoch_order(len(train), config.seed, epoch)
    # Summed losses stay on the device: no host synchronisation per step, so reading the next batch from
    # the pixel cache overlaps with the GPU still working on this one. The bar reads them every few steps.
    step_sums = torch.zeros(steps, dtype=torch.float64, device=device)
    local_images = config.batch_size // processes.world_size
    for step in range(steps):
        batch = plan.global_batch(order, step)
        draw = None
        if config.augmentation.enabled:
            draw = draw_augmentation(
                len(batch), config.augmentation, generator(config.seed, "augment", epoch, step)
            )
        optimizer.zero_grad(set_to_none=True)
        for micro in range(config.grad_accum):
            rows = plan.local_slice(micro, processes.rank)
            pixels, _ = train.read(batch[rows])
            pixels = torch.from_numpy(pixels).to(device, non_blocking=True)
            if draw is not None:
                pixels = apply_augmentation(pixels, draw[rows])
            targets = train.target_tensor(batch[rows], device)
            last_micro = micro == config.grad_accum - 1
            sync = contextlib.nullcontext() if last_micro or not processes.distributed else network.no_sync()
            with sync:
                with _autocast(device, amp_dtype):
                    logits = network(pixels)
                losses = per_sample_loss(logits.float(), targets, train.kind)
                # DDP averages gradients over processes; scaling by world size makes it a sum, so the
                # gradient is that of the mean loss over the whole global batch.
                loss = losses.sum() * (processes.world_size / config.batch_size)
                scaler.scale(loss).backward()
            step_sums[step] += losses.detach().double().sum()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if step % SHOW_LOSS_EVERY == 0 or step == steps - 1:
            shown = step_sums[step].item() / local_images
            bar.update(task, completed=step + 1, status=f"loss {shown:.4f}  {last_val}".rstrip())
    if processes.distributed:
        torch.distributed.all_reduce(step_sums)
    bar.update(task, completed=steps)
    return step_sums.sum().item() / (steps * config.batch_size)


def _freeze_unreached(model, train, device, method, processes) -> None:
    pixels, _ = train.read(np.arange(min(2, len(train))))
    unreached = check_gradients_reach(model, torch.from_numpy(pixels).to(device))
    if not unreached:
        return
    if method == "lora":
        raise BenchError(
            f"{len(unreached)} LoRA adapter weights get no gradient (e.g. {unreached[0]}): their modules are "
            "not called by the forward pass (peft adapters on `out_proj` inside nn.MultiheadAttention are the "
            "known case; target `attn` instead). Fix the encoder's lora_targets."
        )
    for name, parameter in model.named_parameters():
        if name in unreached:
            parameter.requires_grad_(False)
    if processes.is_main:
        console.print(
            f"{len(unreached)} image-tower weights do not affect the embedding (e.g. {unreached[0]}) "
            f"and stay frozen: {model.trainable_parameter_count():,} trainable parameters remain"
        )


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def _progress_bar(show: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=True,
    )
