"""`bench perf finetune`: training images/s of LoRA and of full fine-tuning beside a frozen forward pass.

On one device and one batch of random uint8 pixels at the encoder's pixel size, in this process:
1. frozen forward: `preprocess` + `encode_image` under inference mode (what extraction costs per image);
2. LoRA step: augmentation + forward + backward + AdamW step with peft adapters (the encoder's lora_targets,
   rank 16) and the linear head, exactly as `bench finetune` trains;
3. full fine-tuning step: the same with every image-tower weight trainable.
Each mode runs `--warmup` untimed steps; then the modes take turns for `--rounds` rounds of `--steps` timed
steps (so a change in the machine's load hits all three alike) and each mode's median round counts. The
table gives images/s, seconds per batch, the trainable parameter count and the ratio to the frozen forward
pass. `--random-weights` builds an
official (real-size) architecture with random weights, so real sizes can be timed without checkpoints: the
numbers are speeds, not results.
"""

from __future__ import annotations

import time


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="tiny-clip", help="encoder name (default tiny-clip)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode and round (default 3)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds over the modes; each mode's median round counts (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="autocast precision, as in bench finetune (auto: bf16 on CUDA, fp32 on the CPU)")
    parser.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default 16, the study's)")
    parser.add_argument("--random-weights", action="store_true",
                        help="build an official architecture with random weights (no checkpoint needed)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")


def _encoder(args, device):
    import importlib

    from extractors import load_encoder
    from extractors.registry import get_spec

    spec = get_spec(args.model)
    if args.random_weights:
        encoder = importlib.import_module(f"extractors.families.{spec.family}").build(spec, None, str(device))
        return encoder.freeze()
    return load_encoder(args.model, device=str(device))


def _timed_steps(step, steps: int, device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


def _setup(mode: str, args, device, generator):
    """Build one mode's encoder and return (step function, trainable parameter count, amp dtype)."""
    import torch

    from benchmark.finetune.augment import apply_augmentation, draw_augmentation
    from benchmark.finetune.config import make_config
    from benchmark.finetune.model import build_model
    from benchmark.finetune.inference import autocast_dtype, per_sample_loss

    encoder = _encoder(args, device)
    pixels = torch.randint(0, 256, (args.batch_size, encoder.pixel_size, encoder.pixel_size),
                           dtype=torch.uint8, generator=generator).to(device)
    config = make_config(method="full" if mode == "frozen forward" else mode, lora_rank=args.lora_rank,
                         batch_size=args.batch_size, precision=args.precision)
    amp = autocast_dtype(config.precision, device)

    def autocast():
        return torch.autocast(device.type, dtype=amp, enabled=amp is not None)

    if mode == "frozen forward":
        def step():
            with torch.inference_mode(), autocast():
                encoder.encode_image(encoder.preprocess(pixels))["embedding"]

        return step, 0, amp, encoder.weights_tag

    model = build_model(encoder, num_classes=6, config=config).to(device)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    targets = torch.arange(args.batch_size, device=device) % 6

    def step():
        draw = draw_augmentation(args.batch_size, config.augmentation, generator)
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model(apply_augmentation(pixels, draw))
        per_sample_loss(logits.float(), targets, "single").mean().backward()
        optimizer.step()

    return step, model.trainable_parameter_count(), amp, encoder.weights_tag


def measure(args) -> dict:
    """Warm each mode up, then time the modes in alternating rounds; report each mode's median round."""
    import statistics

    import torch

    from benchmark.core.errors import BenchError
    from benchmark.finetune.inference import seeded

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for but no CUDA device is available here; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    modes = ("frozen forward", "lora", "full")
    setups = {}
    with seeded(0, device):
        for mode in modes:
            setups[mode] = _setup(mode, args, device, generator)
            for _ in range(args.warmup):
                setups[mode][0]()
        seconds = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode in modes:
                seconds[mode].append(_timed_steps(setups[mode][0], args.steps, device))
    rows = {}
    for mode in modes:
        median = statistics.median(seconds[mode])
        rows[mode] = {
            "images_per_s": args.batch_size / median,
            "seconds_per_batch": median,
            "trainable_parameters": setups[mode][1],
        }
    for row in rows.values():
        row["ratio_to_frozen_forward"] = row["images_per_s"] / rows["frozen forward"]["images_per_s"]
    amp = setups["full"][2]
    return {
        "model": args.model,
        "weights": "random weights, official architecture" if args.random_weights else setups["full"][3],
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                                 f" ({torch.get_num_threads()} threads)"),
        "precision": str(amp).replace("torch.", "") if amp else "fp32",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "rounds": args.rounds,
        "modes": rows,
    }


def run(args) -> int:
    from benchmark.perf import emit

    return emit(measure(args), args, render)


def render(report: dict):
    from rich.table import Table

    table = Table(title=f"fine-tuning throughput: {report['model']} ({report['weights']}), batch "
                        f"{report['batch_size']}, {report['device']}, {report['precision']}")
    for column in ("mode", "images/s", "s/batch", "trainable params", "x frozen forward"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, row in report["modes"].items():
        table.add_row(mode, f"{row['images_per_s']:.1f}", f"{row['seconds_per_batch']:.3f}",
                      f"{row['trainable_parameters']:,}", f"{row['ratio_to_frozen_forward']:.2f}")
    return table
