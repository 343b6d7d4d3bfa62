"""The fine-tuning loop: what LoRA and full fine-tuning change, resume after a kill, torchrun equivalence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.finetune import checkpoint

TESTS = Path(__file__).parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

from finetune_fakes import tiny_run  # noqa: E402


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def test_lora_trains_only_adapters_and_head_and_leaves_frozen_weights_bit_identical(tmp_path):
    from finetune_fakes import TinyEncoder

    from benchmark.finetune.config import make_config
    from benchmark.finetune.model import build_model
    from benchmark.finetune.inference import seeded

    with seeded(0):
        reference = _snapshot(TinyEncoder())  # TinyEncoder is built the same way inside tiny_run
    result, model, probs = tiny_run(tmp_path / "run", method="lora", epochs=2, lora_rank=2)
    trainable = set(model.trainable_names())
    assert trainable and all("lora_" in name or name.startswith("head.") for name in trainable)
    assert any("lora_" in name for name in trainable) and any(name.startswith("head.") for name in trainable)
    assert result.trainable_parameters == sum(p.numel() for p in model.parameters() if p.requires_grad)
    after = model.encoder.state_dict()
    frozen = {name.replace(".base_layer", ""): tensor for name, tensor in after.items() if "lora_" not in name}
    assert set(frozen) == set(reference)
    for name, tensor in reference.items():
        assert torch.equal(frozen[name], tensor), f"frozen weight {name} changed"
    lora_b = [tensor for name, tensor in after.items() if "lora_B" in name]
    assert any(tensor.abs().sum() > 0 for tensor in lora_b), "LoRA B starts at zero and must have learned"
    assert probs.shape == (16, 3) and np.allclose(probs.sum(axis=1), 1)

    with seeded(0):
        full = build_model(TinyEncoder(), num_classes=3, config=make_config(method="full"))
    expected = {f"encoder.{n}" for n in reference if n.startswith("visual.")} | {"head.weight", "head.bias"}
    assert set(full.trainable_names()) == expected


def test_full_fine_tuning_changes_the_tower_and_learns_the_separable_task(tmp_path):
    result, model, probs = tiny_run(tmp_path / "run", method="full", epochs=4)
    assert result.epochs_run == 4 and 1 <= result.best_epoch <= 4
    best = result.history[result.best_epoch - 1]["val_loss"]
    assert best == min(record["val_loss"] for record in result.history)
    assert result.history[0]["val_loss"] > best or result.best_epoch == 1
    assert (probs.argmax(axis=1) == np.arange(32, 48) % 3).mean() > 0.6
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pt")) == ["best-%04d.pt" % result.best_epoch, "last.pt"]


def test_same_seed_same_result_and_grad_accumulation_matches_one_batch(tmp_path):
    first = tiny_run(tmp_path / "a", epochs=2)
    again = tiny_run(tmp_path / "b", epochs=2)
    accumulated = tiny_run(tmp_path / "c", epochs=2, grad_accum=4)
    other_seed = tiny_run(tmp_path / "d", epochs=2, seed=1)
    assert np.array_equal(first[2], again[2])
    assert np.allclose(first[2], accumulated[2], atol=1e-5)
    assert not np.allclose(first[2], other_seed[2], atol=1e-3)


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    result, _, _ = tiny_run(tmp_path / "run", epochs=30, patience=1, lr=0.5)
    assert result.stopped_early and result.epochs_run < 30
    assert result.epochs_run == result.best_epoch + 1



def test_resume_after_a_kill_continues_from_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "killed"
    # Reads: 1 gradient probe, then per epoch 4 training batches + 2 validation batches; read 9 is the
    # second batch of epoch 2, i.e. after epoch 1's checkpoint.
    script = f"from finetune_fakes import tiny_run; tiny_run({str(run_dir)!r}, epochs=3, kill_at_read=9)"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{TESTS}", "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = checkpoint.TrainingState.load(run_dir / checkpoint.LAST)
    assert len(state.history) == 1

    resumed = tiny_run(run_dir, epochs=3)
    uninterrupted = tiny_run(tmp_path / "straight", epochs=3)
    assert resumed[0].resumed_after_epoch == 1 and resumed[0].epochs_run == 3
    assert resumed[0].history == uninterrupted[0].history
    assert np.array_equal(resumed[2], uninterrupted[2])
    for name, tensor in uninterrupted[1].trainable_state().items():
        assert torch.equal(resumed[1].trainable_state()[name], tensor), name


TORCHRUN_SCRIPT = """
import sys, numpy as np, torch
from finetune_fakes import tiny_run
from benchmark.core.distributed import process_group
with process_group("cpu") as (ranks, device):
    result, model, probs = tiny_run(sys.argv[1], epochs=2, ranks=ranks)
    if ranks.is_main:
        torch.save({"probs": torch.from_numpy(probs), "state": model.trainable_state(),
                    "history": result.history}, sys.argv[2])
"""


def test_torchrun_two_processes_on_gloo_match_one_process(tmp_path):
    script = tmp_path / "two.py"
    script.write_text(TORCHRUN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{TESTS}", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path / "ddp"), str(tmp_path / "out.pt")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    two = torch.load(tmp_path / "out.pt", weights_only=True)
    one_result, one_model, one_probs = tiny_run(tmp_path / "single", epochs=2)
    assert np.allclose(two["probs"].numpy(), one_probs, atol=1e-5)
    for name, tensor in one_model.trainable_state().items():
        assert torch.allclose(two["state"][name], tensor, atol=1e-5), name
    for mine, theirs in zip(one_result.history, two["history"]):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-5)


def test_a_diverging_run_stops_with_a_clear_error(tmp_path):
    from benchmark.core.errors import BenchError

    with pytest.raises(BenchError, match="training loss became nan"):
        tiny_run(tmp_path / "run", epochs=2, lr=float("inf"))


def test_bf16_autocast_path_trains(tmp_path):
    result, _, probs = tiny_run(tmp_path / "run", epochs=1, precision="bf16")
    assert np.isfinite(result.history[0]["train_loss"]) and np.allclose(probs.sum(axis=1), 1)
    fp32 = tiny_run(tmp_path / "fp32", epochs=1)[2]
    assert not np.array_equal(probs, fp32)  # autocast really ran in bfloat16
