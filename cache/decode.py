"""Decoding image files into the pixel store's uint8 squares, with each file's fingerprint.

Each image is opened with PIL, converted to 8-bit grayscale (16-bit images scaled, colour and alpha dropped),
zero-padded to a square (centred) and resized to `size` x `size` (bicubic, antialiased when shrinking). The
bytes are read once: they are hashed (sha256) for the store's fingerprints and decoded from memory.

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

from cache.fingerprints import HASH_BYTES, sha256_of_bytes
from cache.shards import save_arrays

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


def decode_bytes(data: bytes, size: int, *, keep_degenerate: bool = True) -> np.ndarray:
    """Decode one image's bytes into a `size` x `size` uint8 array (OSError/ValueError on a bad file,
    DegenerateImage on a tiny or constant one unless `keep_degenerate`)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        gray = _to_gray(image)
    width, height = gray.size
    if width == 0 or height == 0:
        raise ValueError(f"image has size {width}x{height}")
    if not keep_degenerate:
        _check_not_degenerate(gray)
    side = max(width, height)
    if width != height:
        square = Image.new("L", (side, side), 0)
        square.paste(gray, ((side - width) // 2, (side - height) // 2))
        gray = square
    if side != size:
        gray = gray.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(gray, dtype=np.uint8)


def _check_not_degenerate(gray: Image.Image) -> None:
    width, height = gray.size
    if min(width, height) < MIN_SIDE:
        raise DegenerateImage(f"tiny image ({width}x{height} pixels)")
    low, high = gray.getextrema()
    if low == high:
        raise DegenerateImage(f"constant image (every pixel is {low})")


def decode_image(path: Path, size: int, *, keep_degenerate: bool = True) -> np.ndarray:
    """Decode one image file (see `decode_bytes`)."""
    return decode_bytes(Path(path).read_bytes(), size, keep_degenerate=keep_degenerate)


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
            pixels[offset] = decode_bytes(data, job.size, keep_degenerate=job.keep_degenerate)
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
