"""The fine-tuning loop: seeded, checkpointed every epoch, resumable, distributed under torchrun.

One optimizer step consumes `config.batch_size` images (split into `grad_accum` micro-batches and, under
torchrun, across processes; each process scales its summed loss so the gradient is that of the mean over the
whole batch). AdamW; CosineAnnealingWarmRestarts stepped after every optimizer step (the seed study's
`scheduler.step()` per batch, so T_0 counts steps); best epoch by validation loss; optional early stopping;
bf16/fp16 autocast on CUDA. Randomness: the data order and augmentation come from generators derived from
the seed, epoch and step (`benchmark.finetune.data`); dropout and initialisation draw from torch's global
generator, which `seeded()` forks so that the caller's state is left untouched. Group-aware training
(`benchmark.finetune.groups`): `balance="groups"` plans each epoch as group-balanced draws with replacement;
`loss="groupdro"` weighs each group's mean loss by GroupDRO's online weights (checkpointed with the rest) and
picks the best epoch by the worst group's val loss.

    fit = set up a `Loop` (optimizer, scheduler, scaler, DDP wrapper) -> resume its `TrainingState` if any
          -> per epoch: `train_epoch`, `evaluate` on val, `end_epoch` (best epoch, checkpoint, report)
          -> load the best epoch's weights
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark.core.distributed import SINGLE, Ranks
from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress
from benchmark.finetune import checkpoint as ckpt
from benchmark.finetune.augment import apply_augmentation, draw_augmentation
from benchmark.finetune.config import FineTuneConfig
from benchmark.finetune.data import BatchPlan, SplitData, generator
from benchmark.finetune.groups import GroupDRO, balanced_order
from benchmark.finetune.inference import autocast, autocast_dtype, evaluate, per_sample_loss
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


@dataclass
class Loop:
    """What every step of one training run uses."""

    model: FineTuneModel
    network: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    config: FineTuneConfig
    plan: BatchPlan
    steps: int
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler
    device: torch.device
    amp_dtype: torch.dtype | None
    ranks: Ranks
    run_dir: Path
    progress: Progress
    state: ckpt.TrainingState
    dro: GroupDRO | None = None

    def snapshot(self) -> ckpt.TrainingState:
        """The current state, for `last.pt`."""
        state = self.state
        return ckpt.TrainingState(
            trainable=_cpu_state(self.model.trainable_state()), optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(), rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            history=state.history, best_epoch=state.best_epoch, best_val_loss=state.best_val_loss,
            stale_epochs=state.stale_epochs, best_file=state.best_file,
            dro_weights=None if self.dro is None else self.dro.q.detach().cpu(),
        )


def fit(model: FineTuneModel, train: SplitData, val: SplitData, config: FineTuneConfig, *, run_dir: Path,
        device: torch.device | str = "cpu", ranks: Ranks = SINGLE, resume: bool = True,
        progress: Progress = SILENT) -> TrainResult:
    """Train `model` in place; on return it holds the best epoch's weights. Checkpoints go to `run_dir`
    (prepared by `checkpoint.prepare_run_dir`); with `resume`, training continues from `last.pt` there."""
    loop = setup(model, train, val, config, run_dir=Path(run_dir), device=torch.device(device), ranks=ranks,
                 progress=progress if ranks.is_main else SILENT)
    result = TrainResult(trainable_parameters=model.trainable_parameter_count())
    if resume and (loop.run_dir / ckpt.LAST).exists():
        restore(loop, ckpt.TrainingState.load(loop.run_dir / ckpt.LAST))
        result.resumed_after_epoch = len(loop.state.history)
        loop.progress.note(f"resuming {loop.run_dir.name} after epoch {result.resumed_after_epoch}")
    for epoch in range(len(loop.state.history) + 1, config.epochs + 1):
        if config.patience is not None and loop.state.stale_epochs >= config.patience:
            break
        train_loss = train_epoch(loop, train, epoch)
        if not math.isfinite(train_loss):
            raise BenchError(
                f"the training loss became {train_loss} in epoch {epoch}; lower --lr or use --precision fp32 "
                f"(checkpoints of the epochs before are in {loop.run_dir})"
            )
        scores = evaluate(model, val, batch_size=config.batch_size, device=loop.device, ranks=ranks,
                          amp_dtype=loop.amp_dtype)
        end_epoch(loop, epoch, train_loss, scores)
    if loop.state.best_file is None:
        raise BenchError(f"the validation loss was never finite ({loop.state.history[-1]['val_loss']}); lower --lr")
    result.history, result.best_epoch = list(loop.state.history), loop.state.best_epoch
    result.epochs_run = len(result.history)
    result.stopped_early = result.epochs_run < config.epochs
    model.load_trainable_state(ckpt.load_tensors(loop.run_dir / loop.state.best_file))
    model.to(loop.device)
    return result


def setup(model: FineTuneModel, train: SplitData, val: SplitData, config: FineTuneConfig, *, run_dir: Path,
          device: torch.device, ranks: Ranks, progress: Progress) -> Loop:
    """Check the splits, freeze what the loss cannot reach, and build optimizer, scheduler, scaler and DDP."""
    model.to(device)
    plan = BatchPlan(config.batch_size, config.grad_accum, ranks.world_size)
    steps = plan.steps_per_epoch(len(train))
    if steps == 0:
        raise BenchError(
            f"the training split has {len(train)} images, fewer than one batch of {config.batch_size}; "
            "lower --batch-size or use more images"
        )
    if len(val) == 0:
        raise BenchError("the validation split is empty; the best epoch is chosen on it, so it needs images")
    amp_dtype = autocast_dtype(config.precision, device)
    _freeze_unreached(model, train, device, config.method, progress)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=config.restart_period)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
    empty = ckpt.TrainingState(trainable={}, optimizer={}, scheduler={}, scaler={}, rng_cpu=torch.get_rng_state())
    return Loop(model=model, network=_distributed(model, config, device, ranks), config=config, plan=plan,
                steps=steps, optimizer=optimizer, scheduler=scheduler, scaler=scaler, device=device,
                amp_dtype=amp_dtype, ranks=ranks, run_dir=run_dir, progress=progress, state=empty,
                dro=_group_dro(config, train, val, device))


def _group_dro(config: FineTuneConfig, train: SplitData, val: SplitData, device) -> GroupDRO | None:
    if config.balance == "none" and config.loss == "erm":
        return None
    if train.groups is None or val.groups is None:
        raise BenchError(f"--protect {config.protect}: the training data carry no groups of the protected attribute")
    if config.loss != "groupdro":
        return None
    return GroupDRO(int(max(train.groups.max(), val.groups.max())) + 1, config.dro_step, device)


def _distributed(model: FineTuneModel, config: FineTuneConfig, device: torch.device, ranks: Ranks):
    if not ranks.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda" and config.method == "full":
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # batch-norm statistics over the global batch
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def restore(loop: Loop, state: ckpt.TrainingState) -> None:
    """Continue from a saved state: weights, optimizer, scheduler, scaler and the random generators."""
    loop.model.load_trainable_state(state.trainable)
    loop.optimizer.load_state_dict(state.optimizer)
    loop.scheduler.load_state_dict(state.scheduler)
    loop.scaler.load_state_dict(state.scaler)
    torch.set_rng_state(state.rng_cpu)
    if loop.device.type == "cuda" and state.rng_cuda is not None:
        torch.cuda.set_rng_state(state.rng_cuda, loop.device)
    if loop.dro is not None and state.dro_weights is not None:
        loop.dro.q = state.dro_weights.to(loop.device)
    state.history = list(state.history)
    loop.state = state


def end_epoch(loop: Loop, epoch: int, train_loss: float, scores: dict) -> None:
    """Record the epoch, keep the best weights, write `last.pt` (rank 0) and wait for every rank."""
    state = loop.state
    criterion = scores["worst_group_loss"] if loop.dro is not None else scores["loss"]
    improved = criterion < state.best_val_loss
    if improved:
        state.best_val_loss, state.stale_epochs, state.best_epoch = criterion, 0, epoch
        state.best_file = ckpt.best_name(epoch)
        if loop.ranks.is_main:
            ckpt.save_tensors(_cpu_state(loop.model.trainable_state()), loop.run_dir / state.best_file)
    else:
        state.stale_epochs += 1
    state.history.append({
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": scores["loss"],
        scores["metric_name"]: scores["metric"],
        "lr": loop.scheduler.get_last_lr()[0],
        **({"val_worst_group_loss": scores["worst_group_loss"]} if "worst_group_loss" in scores else {}),
        **({"group_weights": [round(float(w), 6) for w in loop.dro.q]} if loop.dro is not None else {}),
    })
    if loop.ranks.is_main:
        loop.snapshot().save(loop.run_dir / ckpt.LAST)
        ckpt.remove_stale_best(loop.run_dir, state.best_file)
        loop.progress.note(
            f"epoch {epoch}: train loss {train_loss:.4f}  val loss {scores['loss']:.4f}  "
            f"val {scores['metric_name']} {scores['metric']:.4f}" + ("  best" if improved else "")
        )
    loop.ranks.barrier()


def train_epoch(loop: Loop, train: SplitData, epoch: int) -> float:
    """One epoch of optimizer steps; the mean training loss over its images."""
    loop.model.train()
    if loop.config.balance == "groups":
        order = balanced_order(train.groups, loop.config.seed, epoch)
    else:
        order = loop.plan.epoch_order(len(train), loop.config.seed, epoch)
    # Summed losses stay on the device: no host synchronisation per step, so reading the next batch from
    # the pixel cache overlaps with the GPU still working on this one. The bar reads them every few steps.
    step_sums = torch.zeros(loop.steps, dtype=torch.float64, device=loop.device)
    local_images = loop.config.batch_size // loop.ranks.world_size
    with loop.progress.bar(f"epoch {epoch}/{loop.config.epochs}", total=loop.steps, unit="step",
                           transient=True) as bar:
        for step in range(loop.steps):
            train_step(loop, train, order, epoch, step, step_sums)
            if step % SHOW_LOSS_EVERY == 0 or step == loop.steps - 1:
                bar.update(completed=step + 1, status=f"loss {step_sums[step].item() / local_images:.4f}")
    if loop.ranks.distributed:
        torch.distributed.all_reduce(step_sums)
    return step_sums.sum().item() / (loop.steps * loop.config.batch_size)


def train_step(loop: Loop, train: SplitData, order: np.ndarray, epoch: int, step: int,
               step_sums: torch.Tensor) -> None:
    """One optimizer step over one global batch (its micro-batches, this rank's share of each)."""
    config = loop.config
    batch = loop.plan.global_batch(order, step)
    draw = None
    if config.augmentation.enabled:
        draw = draw_augmentation(len(batch), config.augmentation, generator(config.seed, "augment", epoch, step))
    loop.optimizer.zero_grad(set_to_none=True)
    if loop.dro is not None:
        loop.dro.start_batch(train.groups[batch])
    for micro in range(config.grad_accum):
        rows = loop.plan.local_slice(micro, loop.ranks.rank)
        pixels, _ = train.read(batch[rows])
        pixels = torch.from_numpy(pixels).to(loop.device, non_blocking=True)
        if draw is not None:
            pixels = apply_augmentation(pixels, draw[rows])
        targets = train.target_tensor(batch[rows], loop.device)
        last_micro = micro == config.grad_accum - 1
        sync = contextlib.nullcontext() if last_micro or not loop.ranks.distributed else loop.network.no_sync()
        with sync:
            with autocast(loop.device, loop.amp_dtype):
                logits = loop.network(pixels)
            losses = per_sample_loss(logits.float(), targets, train.kind)
            loop.scaler.scale(_batch_loss(loop, train, batch[rows], losses)).backward()
        step_sums[step] += losses.detach().double().sum()
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    loop.scheduler.step()
    if loop.dro is not None:
        loop.dro.end_batch(loop.ranks)


def _batch_loss(loop: Loop, train: SplitData, positions: np.ndarray, losses: torch.Tensor) -> torch.Tensor:
    """This rank's micro-batch share of the global batch's loss. DDP averages gradients over processes; scaling
    by the world size makes it a sum, so the gradient is that of the whole global batch's loss: the mean (ERM) or
    GroupDRO's weighted group means."""
    if loop.dro is None:
        return losses.sum() * (loop.ranks.world_size / loop.config.batch_size)
    groups = train.group_tensor(positions, loop.device)
    loop.dro.accumulate(losses, groups)
    return loop.dro.micro_loss(losses, groups, loop.ranks.world_size)


def _freeze_unreached(model, train, device, method, progress: Progress) -> None:
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
    progress.note(
        f"{len(unreached)} image-tower weights do not affect the embedding (e.g. {unreached[0]}) "
        f"and stay frozen: {model.trainable_parameter_count():,} trainable parameters remain"
    )


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}
