"""Small fakes for the cache and extraction tests: a hand-made manifest over tiny PNGs, and a fake encoder.

Importable from test subprocesses too (they put this folder on sys.path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image
from torch import nn

from benchmark.core.schema import LABEL_COLUMNS
from benchmark.core.manifest import MANIFEST_SCHEMA
from extractors.base import Encoder


def write_dataset(root: Path, n: int = 12, *, seed: int = 0, sizes=((40, 40), (48, 32), (30, 44))) -> pl.DataFrame:
    """Write `n` small random grayscale PNGs under `root/images/` and return their canonical manifest."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(n):
        width, height = sizes[index % len(sizes)]
        pixels = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
        relative = f"images/{index:08d}_000.png"
        Image.fromarray(pixels, mode="L").save(root / relative)
        row = {
            "image_id": f"{index:08d}_000.png",
            "path": relative,
            "patient_id": f"p{index // 2}",
            "sex": "F" if index % 2 else "M",
            "age": float(30 + index),
            "view": "PA",
            "split": ("train", "val", "test")[(index // 2) % 3],
        }
        row.update({name: int(rng.integers(0, 2)) for name in LABEL_COLUMNS})
        rows.append(row)
    return pl.DataFrame(rows, schema=MANIFEST_SCHEMA)


@dataclass(frozen=True)
class FakePreprocess:
    pixel_size: int = 16


@dataclass(frozen=True)
class FakeSpec:
    name: str = "fake-encoder"
    family: str = "fake"
    preprocess: FakePreprocess = FakePreprocess()
    embed_dim: int = 8


class FakeEncoder(Encoder):
    """Deterministic: a fixed random projection of the pooled pixels. `delay` seconds of sleep per batch
    (not part of the identity) slow it down for kill tests; `local=True` adds GLoRIA-like local features."""

    def __init__(self, spec: FakeSpec = FakeSpec(), *, weights_digest: str = "random-init", delay: float = 0.0,
                 local: bool = False):
        super().__init__(spec, weights_tag="random-init", weights_digest=weights_digest)
        self.delay = delay
        self.local = local
        generator = torch.Generator().manual_seed(7)
        self.projection = nn.Linear(16, spec.embed_dim)
        with torch.no_grad():
            self.projection.weight.copy_(torch.randn(spec.embed_dim, 16, generator=generator))
            self.projection.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.to(self.device).float().div(255.0).unsqueeze(1)

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.delay:
            time.sleep(self.delay)
        pooled = nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)
        outputs = {"embedding": self.projection(pooled)}
        if self.local:
            outputs["local"] = pooled.view(-1, 4, 4)
        return outputs

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        rows = [torch.Generator().manual_seed(sum(map(ord, prompt))) for prompt in prompts]
        return {"embedding": torch.stack([torch.randn(self.spec.embed_dim, generator=g) for g in rows])}

    def prompt_sets(self) -> dict[str, list[tuple[str, str, str]]]:
        return {
            "default": [(name, f"a chest x-ray showing {name}", "pos") for name in LABEL_COLUMNS[:3]],
            "negated": [(name, f"no {name}", "neg") for name in LABEL_COLUMNS[:3]],
        }


def main(argv: list[str] | None = None) -> None:
    """`python tests/cache_fakes.py MANIFEST.parquet ROOT WORKDIR [--delay S] [--shard-rows R] [--batch-size B]`:
    extract with the fake encoder (used by the kill, concurrency and torchrun tests). Prints which shards this
    process embedded as `embedded <rank> <shards>`."""
    import argparse
    import os

    import benchmark.pipelines.extract as extract_module

    parser = argparse.ArgumentParser()
    parser.add_argument("manifest")
    parser.add_argument("root")
    parser.add_argument("workdir")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--shard-rows", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--no-wait", action="store_true")
    args = parser.parse_args(argv)

    real = extract_module.embed_shards

    def reporting(encoder, pixels, plan, parts, shards, **kwargs):
        print(f"embedded {os.environ.get('RANK', '0')} {','.join(map(str, shards))}", flush=True)
        return real(encoder, pixels, plan, parts, shards, **kwargs)

    extract_module.embed_shards = reporting
    path = extract_module.extract(
        FakeEncoder(delay=args.delay), pl.read_parquet(args.manifest), Path(args.root), workdir=Path(args.workdir),
        shard_rows=args.shard_rows, batch_size=args.batch_size, wait=not args.no_wait,
    )
    print("store", path, flush=True)


if __name__ == "__main__":
    main()
