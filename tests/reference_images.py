"""The PNG images the fidelity fixtures (tests/fixtures/reference/) were computed on, made again on demand.

The scripts that ran the authors' code wrote these same images (this function, same seed) and recorded the
authors' pixels and embeddings for them; the tests write them into a temporary folder and compare. Shapes
cover a square image with a non-integer scale to every store size, a portrait and a landscape image (the
padding side and the rounding of the short side) and a 1024-px square (NIH's size, an integer scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SHAPES = ((600, 600), (600, 470), (455, 640), (1024, 1024))
"""(height, width) of each reference image."""
SEED = 20261204


def reference_pixels(index: int) -> np.ndarray:
    """The uint8 grey image `index`: smooth anatomy-like shapes, edges and mild noise (deterministic)."""
    height, width = IMAGE_SHAPES[index]
    rng = np.random.default_rng([SEED, index])
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y, x = y / height, x / width
    image = 90 + 60 * np.sin(2 * np.pi * (x * rng.uniform(1, 3) + y * rng.uniform(0.5, 2)))
    for _ in range(6):
        cy, cx, radius = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.25)
        image += rng.uniform(-70, 70) * (((y - cy) ** 2 + (x - cx) ** 2) < radius**2)
    image += rng.normal(0, 1.5, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_reference_images(folder: str | Path) -> list[Path]:
    """Write every reference image as an 8-bit grey PNG into `folder`; return their paths in order."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(len(IMAGE_SHAPES)):
        path = folder / f"reference-{index}.png"
        Image.fromarray(reference_pixels(index), mode="L").save(path)
        paths.append(path)
    return paths
