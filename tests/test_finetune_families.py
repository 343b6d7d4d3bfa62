"""Every tiny encoder variant (one or more per family) fine-tunes a few steps on the CPU, with LoRA and fully."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.finetune.config import make_config
from benchmark.finetune.data import ArrayPixels, SplitData
from benchmark.finetune.model import build_model
from benchmark.finetune.inference import seeded
from benchmark.finetune.trainer import fit
from benchmark.ui import RichProgress
from benchmark.finetune import checkpoint
from extractors import load_encoder
from extractors.registry import REGISTRY

TINY = sorted(name for name, spec in REGISTRY.items() if spec.variant == "tiny")


def test_every_family_has_a_tiny_variant_here():
    assert {REGISTRY[name].family for name in TINY} == {spec.family for spec in REGISTRY.values()}


def _splits(size: int):
    rng = np.random.default_rng(0)
    pixels = ArrayPixels(rng.integers(0, 256, (12, size, size), dtype=np.uint8))
    labels = np.arange(12) % 3
    return SplitData(pixels, np.arange(8), labels[:8], "single"), SplitData(pixels, np.arange(8, 12), labels[8:], "single")


@pytest.mark.parametrize("name", TINY)
def test_lora_and_full_fine_tune_a_few_steps(name, tmp_path):
    for method in ("lora", "full"):
        encoder = load_encoder(name)
        train, val = _splits(encoder.pixel_size)
        tower_before = {key: value.clone() for key, value in encoder.image_tower().state_dict().items()}
        config = make_config(method=method, epochs=1, batch_size=4, lr=1e-2, lora_rank=2)
        with seeded(0):
            model = build_model(encoder, num_classes=3, config=config)
            run_dir = tmp_path / method
            checkpoint.prepare_run_dir(run_dir, {"name": name, "method": method}, resume=False)
            result = fit(model, train, val, config, run_dir=run_dir)
        assert result.epochs_run == 1 and np.isfinite(result.history[0]["train_loss"])
        tower_after = encoder.image_tower().state_dict()
        if method == "lora":
            names = model.trainable_names()
            assert any("lora_" in n for n in names) and all("lora_" in n or n.startswith("head.") for n in names)
            # peft moves a wrapped module's own tensors under `.base_layer`; every one must be bit-identical
            frozen = {k.replace(".base_layer", ""): v for k, v in tower_after.items() if "lora_" not in k}
            assert set(frozen) == set(tower_before)
            for key, value in tower_before.items():
                assert torch.equal(frozen[key], value), f"{name}: frozen {key} changed under LoRA"
            learned = [k for k, v in tower_after.items() if "lora_B" in k and v.abs().sum() > 0]
            assert learned, f"{name}: no LoRA B matrix moved from zero"
        else:
            changed = [key for key, value in tower_before.items() if not torch.equal(tower_after[key], value)]
            assert changed, f"{name}: full fine-tuning changed no tower weight"
            assert result.trainable_parameters > 0.5 * sum(p.numel() for p in encoder.image_tower().parameters())


def test_perf_finetune_reports_the_three_modes_side_by_side(capsys):
    import json

    from benchmark.cli import main

    assert main(["perf", "finetune", "--json", "--steps", "1", "--rounds", "1", "--warmup", "0", "--batch-size", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["modes"]) == ["frozen forward", "lora", "full"]
    assert report["modes"]["frozen forward"]["ratio_to_frozen_forward"] == 1.0
    assert 0 < report["modes"]["lora"]["trainable_parameters"] < report["modes"]["full"]["trainable_parameters"]
    assert all(row["images_per_s"] > 0 for row in report["modes"].values())


def test_lora_on_a_bypassed_module_is_an_error_not_a_silent_no_op(tmp_path, monkeypatch):
    from benchmark.core.errors import BenchError

    encoder = load_encoder("tiny-clip")
    # open_clip's attention passes out_proj's weight straight to F.multi_head_attention_forward
    monkeypatch.setattr(type(encoder), "lora_targets", property(lambda self: ["out_proj"]))
    train, val = _splits(encoder.pixel_size)
    config = make_config(method="lora", epochs=1, batch_size=4, lora_rank=2)
    with seeded(0):
        model = build_model(encoder, num_classes=3, config=config)
        checkpoint.prepare_run_dir(tmp_path, {"t": 1}, resume=False)
        with pytest.raises(BenchError, match="get no gradient.*out_proj"):
            fit(model, train, val, config, run_dir=tmp_path)


def test_full_fine_tuning_says_how_many_parameters_remain_after_freezing_unreached_ones(tmp_path, capsys):
    encoder = load_encoder("tiny-gloria")  # its local embedder does not feed the global embedding
    train, val = _splits(encoder.pixel_size)
    config = make_config(method="full", epochs=1, batch_size=4)
    with seeded(0):
        model = build_model(encoder, num_classes=3, config=config)
        before = model.trainable_parameter_count()
        checkpoint.prepare_run_dir(tmp_path, {"name": "tiny-gloria", "method": "full"}, resume=False)
        result = fit(model, train, val, config, run_dir=tmp_path, progress=RichProgress(enabled=False))
    out = " ".join(capsys.readouterr().out.split())
    assert result.trainable_parameters < before
    assert f"stay frozen: {result.trainable_parameters:,} trainable parameters remain" in out
