"""Fine-tuning building blocks: augmentation, batch planning, configuration, CLI errors."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.finetune.augment import apply_augmentation, augment_pixels, draw_augmentation
from benchmark.finetune.config import NO_AUGMENTATION, Augmentation, make_config
from benchmark.finetune.data import BatchPlan


def _batch(n=6, size=12, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8))


def test_flips_only_flip_the_chosen_images():
    pixels = _batch()
    out = augment_pixels(pixels, Augmentation(vflip=1.0, hflip=0.0, rotation_degrees=0, jitter=0), torch.Generator())
    assert torch.equal(out, pixels.flip(-2))
    out = augment_pixels(pixels, Augmentation(vflip=0.0, hflip=1.0, rotation_degrees=0, jitter=0), torch.Generator())
    assert torch.equal(out, pixels.flip(-1))
    assert torch.equal(augment_pixels(pixels, NO_AUGMENTATION, torch.Generator()), pixels)


def test_rotation_by_90_degrees_matches_rot90_and_jitter_scales_brightness():
    pixels = _batch(2, 8)
    draw = draw_augmentation(2, NO_AUGMENTATION, torch.Generator())
    quarter = type(draw)(draw.vflip, draw.hflip, torch.tensor([90.0, 0.0]), draw.brightness)
    rotated = apply_augmentation(pixels, quarter)
    assert torch.equal(rotated[1], pixels[1])
    assert torch.equal(rotated[0], torch.rot90(pixels[0], 1, dims=(0, 1))) or torch.equal(
        rotated[0], torch.rot90(pixels[0], -1, dims=(0, 1))
    )
    darker = type(draw)(draw.vflip, draw.hflip, draw.degrees, torch.tensor([0.5, 1.0]))
    jittered = apply_augmentation(pixels, darker)
    assert torch.equal(jittered[0], (pixels[0].float() * 0.5).round().to(torch.uint8))


def test_augmentation_is_reproducible_and_slices_agree_with_the_whole_batch():
    pixels = _batch(8)
    study = Augmentation()
    first = augment_pixels(pixels, study, torch.Generator().manual_seed(3))
    again = augment_pixels(pixels, study, torch.Generator().manual_seed(3))
    other = augment_pixels(pixels, study, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    draw = draw_augmentation(8, study, torch.Generator().manual_seed(3))
    halves = torch.cat([apply_augmentation(pixels[:4], draw[0:4]), apply_augmentation(pixels[4:], draw[4:8])])
    assert torch.equal(halves, first)


def test_batch_plan_covers_each_global_batch_exactly_once_across_processes_and_micro_batches():
    plan = BatchPlan(batch_size=12, grad_accum=3, world_size=2)
    order = plan.epoch_order(30, seed=1, epoch=2)
    assert plan.steps_per_epoch(30) == 2
    assert np.array_equal(order, plan.epoch_order(30, seed=1, epoch=2))
    assert not np.array_equal(order, plan.epoch_order(30, seed=1, epoch=3))
    batch = plan.global_batch(order, 1)
    pieces = [batch[plan.local_slice(micro, rank)] for micro in range(3) for rank in range(2)]
    assert all(len(piece) == 2 for piece in pieces)
    assert np.array_equal(np.sort(np.concatenate(pieces)), np.sort(batch))
    with pytest.raises(BenchError, match="divisible by grad-accum x processes"):
        BatchPlan(batch_size=12, grad_accum=4, world_size=2)


def test_seed_study_preset_and_overrides():
    config = make_config()
    assert (config.lr, config.weight_decay, config.batch_size, config.epochs) == (1e-4, 1e-5, 64, 100)
    assert (config.restart_period, config.lora_rank, config.patience) == (10, 16, None)
    assert config.augmentation == Augmentation(vflip=0.3, hflip=0.3, rotation_degrees=15, jitter=0.2)
    assert make_config(lora_rank=8).lora_alpha == 8.0
    assert make_config(lora_rank=8, lora_alpha=1).lora_alpha == 1
    with pytest.raises(BenchError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(BenchError, match="not divisible by --grad-accum"):
        make_config(batch_size=10, grad_accum=4)
    with pytest.raises(BenchError, match="unknown fine-tuning method"):
        make_config(method="adapter")


def _cli_args(*extra):
    from benchmark.cli import build_parser

    return build_parser().parse_args(["finetune", "--model", "tiny-clip", "--task", "nih6x200", "--method", "lora", *extra])


def test_cli_builds_the_config_from_options():
    from benchmark.commands.finetune import build_config

    config = build_config(_cli_args("--lora-rank", "4", "--patience", "0", "--no-augment", "--epochs", "3"))
    assert (config.lora_rank, config.lora_alpha, config.patience, config.epochs) == (4, 4.0, None, 3)
    assert not config.augmentation.enabled
    assert build_config(_cli_args("--preset", "quick")).patience == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_without_cuda_is_a_clear_error(workdir):
    from benchmark.cli import main

    assert main(["finetune", "--model", "tiny-clip", "--task", "nih6x200", "--method", "lora", "--device", "cuda"]) == 2
    args = _cli_args("--device", "cuda")
    with pytest.raises(BenchError, match="no usable CUDA GPU"):
        args.func(args)


def test_unregistered_dataset_names_the_command_to_run(workdir):
    args = _cli_args("--epochs", "1")
    with pytest.raises(BenchError, match="bench extract --dataset nih --root DIR"):
        args.func(args)
