"""`bench perf extract --hit-images N`: how long a fully cached extraction of an NIH-size dataset takes to decide
"nothing changed" with per-image fingerprints (one stat per file), beside the same decision with
`--verify-content` (every file hashed) and the first extraction.

The dataset is N small noise PNGs (16 x 16) with an NIH-layout CSV; the encoder is tiny-clip (random weights):
the figures are about the cache, not about X-rays.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

NIH_SIZE = 112_120
HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
          "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


def write_files(root: Path, n: int, seed: int = 0) -> None:
    """N noise PNGs in `root/images/` and the NIH CSV and split lists that describe them."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    lines, names = [HEADER], []
    for i in range(n):
        name = f"{i // 4 + 1:08d}_{i % 4:03d}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / "images" / name,
                                                                                compress_level=1)
        lines.append(f"{name},No Finding,{i % 4},{i // 4 + 1},{30 + i % 50},{'MF'[i % 2]},PA,16,16,0.1,0.1")
        names.append(name)
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    test = set(names[: n // 5])
    (root / "test_list.txt").write_text("".join(f"{name}\n" for name in names if name in test))
    (root / "train_val_list.txt").write_text("".join(f"{name}\n" for name in names if name not in test))


def measure_hit(n: int, folder: Path, *, workers: int = 0) -> dict:
    """Build the stores once, then time the cache-hit decision (in process, as `bench extract` makes it)."""
    from benchmark.core.progress import SILENT
    from benchmark.pipelines.extract import ExtractRequest, extract_dataset

    started = time.perf_counter()
    write_files(folder / "data", n)
    write_seconds = time.perf_counter() - started
    request = ExtractRequest(model="tiny-clip", root=folder / "data", workers=workers, batch_size=512)
    started = time.perf_counter()
    extract_dataset(request, folder / "work", SILENT)
    first_seconds = time.perf_counter() - started
    timings = {}
    for name, verify in (("hit_seconds", False), ("hit_verify_content_seconds", True)):
        started = time.perf_counter()
        outcome = extract_dataset(ExtractRequest(model="tiny-clip", root=folder / "data", verify_content=verify),
                                  folder / "work", SILENT)
        timings[name] = time.perf_counter() - started
        if not outcome.cache_hit:
            raise RuntimeError("the second extraction was not a cache hit")
    return {"hit_images": n, "hit_write_files_seconds": write_seconds, "hit_first_extract_seconds": first_seconds,
            **timings, "hit_goal_seconds": 2.0}


def rows(result: dict) -> list[tuple[str, str]]:
    """Table rows for `bench perf extract`."""
    verdict = "meets" if result["hit_seconds"] <= result["hit_goal_seconds"] else "misses"
    n = result["hit_images"]
    return [
        (f"cache hit of {n:,} images: decide 'nothing changed' (stat each file; goal <= 2 s)",
         f"{result['hit_seconds']:.2f} s ({verdict})"),
        (f"cache hit of {n:,} images with --verify-content (hash each file)",
         f"{result['hit_verify_content_seconds']:.2f} s"),
        (f"first extraction of the {n:,} images (tiny-clip)", f"{result['hit_first_extract_seconds']:.1f} s"),
    ]
