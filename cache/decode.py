"""Decoding image files into the pixel store's uint8 squares, with each file's fingerprint.

Each image is opened with PIL, converted to 8-bit grayscale (16-bit images scaled, colour and alpha dropped),
and brought to `size` x `size` by the encoder's resize filter (`RESIZE_FILTERS`, the spec's
`preprocess.store_resize`):

  pil-bicubic      zero-pad to a square (centred), then PIL bicubic (antialiased) to `size` (CLIP, BiomedCLIP,
                   MedCLIP, RAD-DINO, PubMedCLIP: their PIL pipelines on a padded square)
  pil-bilinear     the same with PIL bilinear (torchvision's default `Resize`: CXR-CLIP, BioViL)
  pil-lanczos-fit  longest side to `size` with PIL LANCZOS (= the authors' `Image.ANTIALIAS`), the other side
                   `int(side * ratio)`, then zero-pad centred (CheXzero `data_process.preprocess`)
  cv2-area-fit     the same fit with OpenCV `INTER_AREA`, then zero-pad centred (GLoRIA `_resize_img`)

The bytes are read once: they are hashed (sha256) for the store's fingerprints and decoded from memory.

Degenerate images — tiny (a side under `MIN_SIDE` pixels, e.g. a 1x1 placeholder) or constant (every pixel the
same value) — carry no chest X-ray; they are reported like undecodable files (stop, or `--skip-bad` to exclude
them) unless `keep_degenerate` embeds them anyway.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.errors import BenchError
from cache.fingerprints import HASH_BYTES, sha256_of_bytes
from cache.shards import save_arrays

DEFAULT_RESIZE = "pil-bicubic"
RESIZE_FILTERS = {
    "pil-bicubic": ("zero, centred, to square", "PIL bicubic (antialiased)"),
    "pil-bilinear": ("zero, centred, to square", "PIL bilinear (antialiased)"),
    "pil-lanczos-fit": (
        "zero, centred, after the resize (CheXzero data_process.preprocess)",
        "PIL LANCZOS (antialiased) of the longest side to size, other side int(side * size / longest)",
    ),
    "cv2-area-fit": (
        "zero, centred (floor before, ceil after), after the resize (GLoRIA _resize_img)",
        "OpenCV INTER_AREA of the longest side to size, other side int(side * size / longest)",
    ),
}
"""Resize filter name -> (how the image is padded, how it is resized), as recorded in the store identity."""
PAD_THEN_RESIZE = {"pil-bicubic": Image.Resampling.BICUBIC, "pil-bilinear": Image.Resampling.BILINEAR}
MIN_SIDE = 16
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class DegenerateImage(ValueError):
    """A file that decodes but shows nothing (tiny or constant)."""


def _to_gray(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA").convert("RGB")
    return image.convert("L")


def check_resize(resize: str) -> str:
    if resize not in RESIZE_FILTERS:
        raise BenchError(f"unknown pixel-store resize filter {resize!r}; known filters: {sorted(RESIZE_FILTERS)}.")
    return resize


def decode_bytes(data: bytes, size: int, resize: str = DEFAULT_RESIZE, *, keep_degenerate: bool = True) -> np.ndarray:
    """Decode one image's bytes into a `size` x `size` uint8 array with the `resize` filter (OSError/ValueError
    on a bad file, DegenerateImage on a tiny or constant one unless `keep_degenerate`)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        gray = _to_gray(image)
    width, height = gray.size
    if width == 0 or height == 0:
        raise ValueError(f"image has size {width}x{height}")
    if not keep_degenerate:
        _check_not_degenerate(gray)
    if check_resize(resize) in PAD_THEN_RESIZE:
        return _pad_then_resize(gray, size, PAD_THEN_RESIZE[resize])
    return _pad_centred(_fit_longest_side(np.asarray(gray, dtype=np.uint8), size, resize), size)


def _pad_then_resize(gray: Image.Image, size: int, resample) -> np.ndarray:
    width, height = gray.size
    side = max(width, height)
    if width != height:
        square = Image.new("L", (side, side), 0)
        square.paste(gray, ((side - width) // 2, (side - height) // 2))
        gray = square
    if side != size:
        gray = gray.resize((size, size), resample)
    return np.asarray(gray, dtype=np.uint8)


def _fit_longest_side(gray: np.ndarray, size: int, resize: str) -> np.ndarray:
    """Longest side to `size`, the other `int(side * size / longest)` (as CheXzero and GLoRIA round)."""
    height, width = gray.shape
    ratio = float(size) / max(height, width)
    new_height, new_width = (size, int(width * ratio)) if height >= width else (int(height * ratio), size)
    new_height, new_width = max(new_height, 1), max(new_width, 1)
    if (new_height, new_width) == (height, width):
        return gray
    if resize == "cv2-area-fit":
        import cv2

        return cv2.resize(gray, (new_width, new_height), interpolation=cv2.INTER_AREA)
    image = Image.fromarray(gray, mode="L").resize((new_width, new_height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _pad_centred(fitted: np.ndarray, size: int) -> np.ndarray:
    height, width = fitted.shape
    top, left = (size - height) // 2, (size - width) // 2
    square = np.zeros((size, size), dtype=np.uint8)
    square[top : top + height, left : left + width] = fitted
    return square


def _check_not_degenerate(gray: Image.Image) -> None:
    width, height = gray.size
    if min(width, height) < MIN_SIDE:
        raise DegenerateImage(f"tiny image ({width}x{height} pixels)")
    low, high = gray.getextrema()
    if low == high:
        raise DegenerateImage(f"constant image (every pixel is {low})")


def decode_image(path: Path, size: int, resize: str = DEFAULT_RESIZE, *, keep_degenerate: bool = True) -> np.ndarray:
    """Decode one image file (see `decode_bytes`)."""
    return decode_bytes(Path(path).read_bytes(), size, resize, keep_degenerate=keep_degenerate)


@dataclass(frozen=True)
class ShardJob:
    """Rows `start .. start + len(paths)` of a store, decoded into the `.npz` at `out`."""

    shard: int
    start: int
    paths: tuple[str, ...]
    size: int
    skip_bad: bool
    out: str
    keep_degenerate: bool = False
    resize: str = DEFAULT_RESIZE


def decode_shard(job: ShardJob) -> tuple[int, int, dict | None]:
    """Decode one shard and write it with its fingerprints; returns (shard, rows, first bad image when not
    skipping)."""
    n = len(job.paths)
    pixels = np.zeros((n, job.size, job.size), dtype=np.uint8)
    excluded = np.zeros(n, dtype=bool)
    sizes, times = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    hashes = np.zeros((n, HASH_BYTES), dtype=np.uint8)
    bad_rows, bad_paths, bad_reasons = [], [], []
    for offset, path in enumerate(job.paths):
        try:
            info = os.stat(path)
            data = Path(path).read_bytes()
            sizes[offset], times[offset], hashes[offset] = info.st_size, info.st_mtime_ns, sha256_of_bytes(data)
            pixels[offset] = decode_bytes(data, job.size, job.resize, keep_degenerate=job.keep_degenerate)
        except DECODE_ERRORS as error:
            reason = f"{type(error).__name__}: {error}"
            if not job.skip_bad:
                return job.shard, n, {"row": job.start + offset, "path": path, "reason": reason}
            excluded[offset] = True
            bad_rows.append(job.start + offset)
            bad_paths.append(path)
            bad_reasons.append(reason)
    save_arrays(Path(job.out), pixels=pixels, excluded=excluded, size=sizes, mtime_ns=times, sha256=hashes,
                bad_rows=np.asarray(bad_rows, dtype=np.int64), bad_paths=np.asarray(bad_paths, dtype=str),
                bad_reasons=np.asarray(bad_reasons, dtype=str))
    return job.shard, n, None


def bad_image_message(bad: dict, image_id: str) -> str:
    hint = ("pass --keep-degenerate to embed it anyway, or --skip-bad to record it as excluded"
            if "DegenerateImage" in bad["reason"] else
            "replace or remove the file, or pass --skip-bad to record it as excluded and go on")
    return (f"cannot use image {bad['path']} (manifest row {bad['row']}, image_id {image_id!r}): {bad['reason']}. "
            f"{hint[0].upper()}{hint[1:]}.")
