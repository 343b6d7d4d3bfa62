"""Checkpoints of a fine-tuning run, written every epoch, crash-safe, loaded with weights_only=True.

Layout of `workdir/finetune/<run-id>/`:
    run.json            what the run is (encoder, task, config): a resume must match it
    last.pt             after each epoch: trainable state, optimizer, scheduler, grad scaler, RNG states,
                        history, best epoch so far, epochs without improvement
    best-<epoch>.pt     the trainable state of the best epoch so far (by val loss); older ones are removed
                        only after last.pt names the new one
    done.json           written when training finished (predictions path, best epoch, epochs run)
Every file is written to a temporary name and renamed, so a kill never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from benchmark.errors import BenchError

LAST = "last.pt"
RUN = "run.json"
DONE = "done.json"


def best_name(epoch: int) -> str:
    return f"best-{epoch:04d}.pt"


def save_atomic(obj, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def write_json_atomic(values: dict, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(values, indent=2, sort_keys=True, default=str))
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or foreign file: say which and what to do
        raise BenchError(f"cannot read checkpoint {path}: {error}; start afresh with --no-resume") from error


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
        if recorded != json.loads(json.dumps(description, default=str)):
            raise BenchError(
                f"{run_file} describes a different run than the one asked for; "
                "pass --no-resume to start it afresh, or a different --run-id"
            )
    write_json_atomic(description, run_file)
    return resume and (run_dir / LAST).exists()
