"""A tiny registered dataset for the fine-tuning tests: PNGs whose class shows as a bright patch.

Importable from test subprocesses too (they put this folder on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class _Dataset:
    def __init__(self, manifest, root):
        self.manifest, self.root, self.report = manifest, root, {}


def write_registered_dataset(workdir: Path, root: Path, *, per_class: int = 8, size: int = 48, seed: int = 0):
    """Write 6 x `per_class` single-label images (one per patient, balanced over sex x age < / >= 60) and register
    them as dataset "nih" in `workdir`; return the manifest."""
    import polars as pl
    from PIL import Image

    from benchmark.core.schema import LABEL_COLUMNS, SEED_STUDY_CLASSES
    from benchmark.core.manifest import MANIFEST_SCHEMA
    from benchmark.datasets.registry import register_dataset

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    index = 0
    for class_index, name in enumerate(SEED_STUDY_CLASSES):
        for k in range(per_class):
            pixels = rng.integers(0, 120, size=(size, size), dtype=np.uint8)
            top = (class_index // 3) * (size // 2)
            left = (class_index % 3) * (size // 3)
            pixels[top : top + size // 2, left : left + size // 3] = 230
            image_id = f"{index:08d}_000.png"
            Image.fromarray(pixels, mode="L").save(root / "images" / image_id)
            row = {
                "image_id": image_id,
                "path": f"images/{image_id}",
                "patient_id": f"p{index}",
                "sex": "FM"[k % 2],
                "age": float(40 if (k // 2) % 2 == 0 else 70),
                "view": "PA",
                "split": ("val", "test", "test", "train", "train")[index % 5] if index % 10 < 5 else "train",
            }
            row.update({column: int(column == name) for column in LABEL_COLUMNS})
            rows.append(row)
            index += 1
    manifest = pl.DataFrame(rows, schema=MANIFEST_SCHEMA)
    register_dataset(workdir, "nih", _Dataset(manifest, root))
    return manifest


class TinyEncoder(nn.Module):
    """A pure-torch stand-in for `extractors.Encoder` (no open_clip import, so subprocess tests start fast):
    the image tower is flatten -> fc1 -> GELU -> fc2 on 16 x 16 pixels; LoRA targets fc1 and fc2."""

    weights_tag = "random-init"
    weights_digest = "random-init"
    lora_targets = ["fc1", "fc2"]

    def __init__(self, pixel_size: int = 16, embed_dim: int = 8):
        super().__init__()
        self.pixel_size, self.embed_dim = pixel_size, embed_dim
        self.visual = nn.Sequential()
        self.visual.add_module("fc1", nn.Linear(pixel_size * pixel_size, 16))
        self.visual.add_module("act", nn.GELU())
        self.visual.add_module("fc2", nn.Linear(16, embed_dim))
        self.text = nn.Linear(4, embed_dim)  # frozen, never used by fine-tuning
        self.eval().requires_grad_(False)

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() / 255.0 - 0.5).to(self.text.weight.device)

    def encode_image(self, images: torch.Tensor) -> dict:
        return {"embedding": self.visual(images.flatten(1))}

    def image_tower(self) -> nn.Module:
        return self.visual


def separable_pixels(n: int, classes: int, size: int = 16, seed: int = 0):
    """uint8 images [n, size, size] whose class (labels [n]) shows as a bright band, plus the labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    pixels = rng.integers(0, 100, size=(n, size, size), dtype=np.uint8)
    band = size // classes
    for i, label in enumerate(labels):
        pixels[i, label * band : (label + 1) * band] = 220
    return pixels, labels


class KillingPixels:
    """In-memory pixels that SIGKILL their own process on the `kill_at`-th read (a crash at a known point)."""

    def __init__(self, array: np.ndarray, kill_at: int | None = None):
        self.array, self.kill_at, self.reads = array, kill_at, 0

    def read(self, indices):
        self.reads += 1
        if self.kill_at is not None and self.reads == self.kill_at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return self.array[np.asarray(indices)]


def tiny_run(run_dir: Path, *, method: str = "full", epochs: int = 3, batch_size: int = 8, grad_accum: int = 1,
             kill_at_read: int | None = None, ranks=None, seed: int = 0, n_train: int = 32, n_val: int = 16,
             device: str = "cpu", **settings):
    """Fine-tune `TinyEncoder` on separable 3-class data; return (TrainResult, model, val probabilities)."""
    from benchmark.finetune import checkpoint
    from benchmark.finetune.config import make_config
    from benchmark.finetune.data import SplitData
    from benchmark.core.distributed import SINGLE
    from benchmark.finetune.inference import predict_logits, probabilities, seeded
    from benchmark.finetune.model import build_model
    from benchmark.finetune.trainer import fit

    ranks = ranks or SINGLE
    pixels, labels = separable_pixels(n_train + n_val, 3)
    source = KillingPixels(pixels, kill_at_read)
    train = SplitData(source, np.arange(n_train), labels[:n_train], "single")
    val = SplitData(source, np.arange(n_train, n_train + n_val), labels[n_train:], "single")
    settings.setdefault("lr", 1e-2)
    config = make_config(method=method, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, seed=seed,
                         **settings)
    with seeded(seed):
        model = build_model(TinyEncoder(), num_classes=3, config=config)
        if ranks.is_main:
            checkpoint.prepare_run_dir(Path(run_dir), {"test": "tiny"}, resume=True)
        ranks.barrier()
        result = fit(model, train, val, config, run_dir=Path(run_dir), device=device, ranks=ranks)
        logits = predict_logits(model, val, batch_size=8, device=torch.device(device), ranks=ranks)
    return result, model, probabilities(logits, "single")
