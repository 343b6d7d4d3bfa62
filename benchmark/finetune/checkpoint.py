"""Checkpoints of a fine-tuning run, written every epoch, crash-safe, loaded with weights_only=True.

Layout of `workdir/finetune/<run-id>/`:
    run.json            what the run is (encoder, task, config): a resume must match it
    last.pt             after each epoch: a `TrainingState` (trainable weights, optimizer, scheduler, grad
                        scaler, RNG states, history, best epoch so far, epochs without improvement)
    best-<epoch>.pt     the trainable weights of the best epoch so far (by val loss); older ones are removed
                        only after last.pt names the new one
    done.json           written when training finished (predictions path, best epoch, epochs run)
Every file is written to a temporary name, fsynced and renamed (`benchmark.core.atomic`), so a kill never
leaves a half-written checkpoint. `TrainingState.save` and `TrainingState.load` are the one pair that writes
and reads `last.pt`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.core.atomic import atomic_output, write_json
from benchmark.core.errors import BenchError
from benchmark.core.identity import plain

if TYPE_CHECKING:  # torch is imported where tensors are saved or loaded: checking a run's state needs none
    import torch

LAST = "last.pt"
RUN = "run.json"
DONE = "done.json"


def best_name(epoch: int) -> str:
    return f"best-{epoch:04d}.pt"


def save_tensors(obj, path: Path) -> None:
    """torch.save `obj` (tensors and plain data) to `path` atomically."""
    import torch

    with atomic_output(path) as temporary:
        torch.save(obj, temporary)


def load_tensors(path: Path):
    """Read a file written by `save_tensors` with `weights_only=True`; BenchError naming it when it cannot."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or foreign file: say which and what to do
        raise BenchError(f"cannot read checkpoint {path}: {error}; start afresh with --no-resume") from error


@dataclass
class TrainingState:
    """Everything an interrupted run needs to continue exactly where it stopped."""

    trainable: dict
    optimizer: dict
    scheduler: dict
    scaler: dict
    rng_cpu: torch.Tensor
    rng_cuda: torch.Tensor | None = None
    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    stale_epochs: int = 0
    best_file: str | None = None
    dro_weights: torch.Tensor | None = None
    """GroupDRO's group weights (`--loss groupdro`), None otherwise."""

    def save(self, path: Path) -> None:
        save_tensors({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, path)

    @classmethod
    def load(cls, path: Path) -> "TrainingState":
        values = load_tensors(path)
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or not names >= set(values) or "trainable" not in values:
            raise BenchError(f"{path} is not a training checkpoint of this version; start afresh with --no-resume")
        return cls(**values)


def remove_stale_best(run_dir: Path, keep: str | None) -> None:
    for path in run_dir.glob("best-*.pt"):
        if path.name != keep:
            path.unlink(missing_ok=True)


def prepare_run_dir(run_dir: Path, description: dict, *, resume: bool) -> bool:
    """Create or check the run folder; return True when a checkpoint exists to resume from.

    With resume, an existing folder must describe the same run; without it, old checkpoints are removed.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    run_file = run_dir / RUN
    if not resume:
        for path in list(run_dir.glob("*.pt")) + [run_dir / DONE, run_dir / LAST]:
            path.unlink(missing_ok=True)
    elif run_file.exists():
        recorded = json.loads(run_file.read_text())
        if recorded != plain(description):
            raise BenchError(
                f"{run_file} describes a different run than the one asked for; "
                "pass --no-resume to start it afresh, or a different --run-id"
            )
    write_json(run_file, plain(description))
    return resume and (run_dir / LAST).exists()
