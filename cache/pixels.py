"""The pixel store: every image of a dataset decoded once, into uint8 HDF5, shared by all encoders.

Decoding a 1024-px PNG costs ~16-18 ms per core, far more than a GPU encoder spends on it, so extraction
reads pre-decoded pixels instead. Each image is opened with PIL, converted to 8-bit grayscale (16-bit images
scaled, colour and alpha dropped), brought to `size` x `size` by the encoder's resize filter
(`RESIZE_FILTERS`, the spec's `preprocess.store_resize`) and stored as uint8:

  pil-bicubic      zero-pad to a square (centred), then PIL bicubic (antialiased) to `size` (CLIP, BiomedCLIP,
                   MedCLIP, RAD-DINO, PubMedCLIP: their PIL pipelines on a padded square)
  pil-bilinear     the same with PIL bilinear (torchvision's default `Resize`: CXR-CLIP, BioViL)
  pil-lanczos-fit  longest side to `size` with PIL LANCZOS (= the authors' `Image.ANTIALIAS`), the other side
                   `int(side * ratio)`, then zero-pad centred (CheXzero `data_process.preprocess`)
  cv2-area-fit     the same fit with OpenCV `INTER_AREA`, then zero-pad centred (GLoRIA `_resize_img`)

The filter is part of the store's identity and file name, so encoders with different filters never share
pixels and those that agree do.

File: `workdir/pixels/<manifest-digest[:16]>-<size>px[-<filter>].h5` (no suffix for pil-bicubic), rows in
manifest order:

    pixels             [N, size, size] uint8   (zeros for excluded rows)
    rows/image_id      [N] str
    rows/excluded      [N] bool                 images that could not be decoded (only with skip_bad)
    excluded/row       [E] int64                which rows, and why:
    excluded/path      [E] str
    excluded/reason    [E] str
    attrs: kind, manifest_digest, size, pipeline (JSON of the decode settings), created, complete

Built in shards (see `cache.shards`): crash-safe, resumable, optionally in parallel worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from benchmark.core.atomic import atomic_output
from benchmark.core.distributed import SINGLE, Ranks
from benchmark.core.errors import BenchError
from benchmark.core.identity import canonical_json
from benchmark.core.manifest import manifest_digest
from benchmark.core.progress import SILENT, Progress
from benchmark.core.workdir import Workdir
from cache.build import build_sharded
from cache.shards import PartsFolder, ShardPlan, load_arrays, save_arrays

PIXEL_PIPELINE_VERSION = "1"
PIXEL_SHARD_ROWS = 256
STORE_KIND = "cxr-fairbench pixel store"
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


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


def check_resize(resize: str) -> str:
    if resize not in RESIZE_FILTERS:
        raise BenchError(f"unknown pixel-store resize filter {resize!r}; known filters: {sorted(RESIZE_FILTERS)}.")
    return resize


def pipeline_settings(size: int, resize: str = DEFAULT_RESIZE) -> dict:
    """What determines the pixels (goes into every embedding store identity built from them).

    The default filter's settings are those of the stores written before filters were named, so its stores
    keep their identity; the other filters' settings name them."""
    pad, how = RESIZE_FILTERS[check_resize(resize)]
    return {
        "version": PIXEL_PIPELINE_VERSION,
        "size": int(size),
        "mode": "L (8-bit grayscale; 16-bit scaled by 1/257; colour converted by ITU-R 601-2 luma; alpha dropped)",
        "pad": pad,
        "resize": how,
        "dtype": "uint8",
    }


def _to_gray(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA").convert("RGB")
    return image.convert("L")


def decode_image(path: Path, size: int, resize: str = DEFAULT_RESIZE) -> np.ndarray:
    """Decode one image into a `size` x `size` uint8 array (raises OSError/ValueError on a bad file)."""
    with Image.open(path) as image:
        image.load()
        gray = _to_gray(image)
    width, height = gray.size
    if width == 0 or height == 0:
        raise ValueError(f"image has size {width}x{height}")
    if check_resize(resize) in PAD_THEN_RESIZE:
        return _pad_then_resize(gray, size, PAD_THEN_RESIZE[resize])
    fitted = _fit_longest_side(np.asarray(gray, dtype=np.uint8), size, resize)
    return _pad_centred(fitted, size)


PAD_THEN_RESIZE = {"pil-bicubic": Image.Resampling.BICUBIC, "pil-bilinear": Image.Resampling.BILINEAR}


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


@dataclass(frozen=True)
class _ShardJob:
    shard: int
    start: int
    paths: tuple[str, ...]
    size: int
    skip_bad: bool
    out: str
    resize: str = DEFAULT_RESIZE


def _decode_shard(job: _ShardJob) -> tuple[int, int, dict | None]:
    """Decode one shard and write it; returns (shard, rows, first bad image when not skipping)."""
    n = len(job.paths)
    pixels = np.zeros((n, job.size, job.size), dtype=np.uint8)
    excluded = np.zeros(n, dtype=bool)
    bad_rows, bad_paths, bad_reasons = [], [], []
    for offset, path in enumerate(job.paths):
        try:
            pixels[offset] = decode_image(Path(path), job.size, job.resize)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            reason = f"{type(error).__name__}: {error}"
            if not job.skip_bad:
                return job.shard, n, {"row": job.start + offset, "path": path, "reason": reason}
            excluded[offset] = True
            bad_rows.append(job.start + offset)
            bad_paths.append(path)
            bad_reasons.append(reason)
    save_arrays(
        Path(job.out),
        pixels=pixels,
        excluded=excluded,
        bad_rows=np.asarray(bad_rows, dtype=np.int64),
        bad_paths=np.asarray(bad_paths, dtype=str),
        bad_reasons=np.asarray(bad_reasons, dtype=str),
    )
    return job.shard, n, None


def _bad_image_error(bad: dict, image_id: str) -> BenchError:
    return BenchError(
        f"cannot decode image {bad['path']} (manifest row {bad['row']}, image_id {image_id!r}): {bad['reason']}. "
        "Replace or remove the file, or pass --skip-bad to record it as excluded and go on."
    )


class PixelStore:
    """Reader of a complete pixel store; build or reuse one with `PixelStore.open_or_build`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid = None
        with h5py.File(self.path, "r") as handle:
            if not handle.attrs.get("complete", False) or handle.attrs.get("kind") != STORE_KIND:
                raise BenchError(f"{self.path} is not a complete pixel store; delete it and run again")
            self.size = int(handle.attrs["size"])
            self.manifest_digest = str(handle.attrs["manifest_digest"])
            self.image_ids = handle["rows/image_id"].asstr()[:]
            self.excluded = handle["rows/excluded"][:].astype(bool)
            self.bad = [
                {"row": int(row), "path": path, "reason": reason}
                for row, path, reason in zip(
                    handle["excluded/row"][:],
                    handle["excluded/path"].asstr()[:],
                    handle["excluded/reason"].asstr()[:],
                )
            ]

    @classmethod
    def open(cls, path: Path) -> PixelStore:
        """Open a complete pixel store for reading."""
        return cls(path)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getstate__(self):  # DataLoader workers reopen the file in their own process
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Rows `start:stop` as uint8 [B, size, size]."""
        return self._handle()["pixels"][start:stop]

    def read(self, indices) -> np.ndarray:
        """Rows at `indices` (any order, repeats allowed) as uint8 [B, size, size]."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            return np.zeros((0, self.size, self.size), dtype=np.uint8)
        if indices.min() < 0 or indices.max() >= len(self):
            raise IndexError(f"pixel store {self.path} has {len(self)} rows; asked for rows {indices.min()}..{indices.max()}")
        unique, inverse = np.unique(indices, return_inverse=True)
        if unique.size == unique[-1] - unique[0] + 1:
            block = self.read_range(int(unique[0]), int(unique[-1]) + 1)
        else:
            block = self._handle()["pixels"][unique]
        return block[inverse]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @classmethod
    def open_or_build(
        cls,
        manifest,
        root,
        *,
        size: int,
        workdir,
        resize: str = DEFAULT_RESIZE,
        workers: int = 0,
        skip_bad: bool = False,
        progress: Progress = SILENT,
        wait: bool = True,
        ranks: Ranks = SINGLE,
        shard_rows: int = PIXEL_SHARD_ROWS,
    ) -> PixelStore:
        """The pixel store of `manifest` at `size` with the `resize` filter, decoding only what no earlier run
        finished."""
        if manifest.height == 0:
            raise BenchError("the manifest has no rows: there are no images to decode. Check the dataset root and its CSV.")
        root = Path(root)
        digest = manifest_digest(manifest)
        path = Workdir.of(workdir).pixel_store(digest, size, resize=check_resize(resize))
        image_ids = manifest["image_id"].to_list()
        paths = [str(root / relative) for relative in manifest["path"].to_list()]
        settings = pipeline_settings(size, resize)
        identity_json = canonical_json({"manifest_digest": digest, "pipeline": settings, "shard_rows": shard_rows})
        plan = ShardPlan(len(image_ids), shard_rows)
        parts = PartsFolder(path.with_name(path.stem + ".parts"), identity_json)

        def is_complete() -> bool:
            return _is_complete(path, digest, size, settings)

        def compute(shards: list[int]) -> None:
            jobs = []
            for shard in shards:
                start, stop = plan.bounds(shard)
                jobs.append(_ShardJob(shard, start, tuple(paths[start:stop]), size, skip_bad, str(parts.shard_path(shard)),
                                     resize))
            _run_jobs(jobs, workers=workers, progress=progress, total=plan.n_rows, done=plan.n_rows - sum(len(j.paths) for j in jobs), image_ids=image_ids)

        def assemble() -> None:
            _assemble(path, parts, plan, image_ids=image_ids, digest=digest, size=size, settings=settings)

        if not ranks.share(is_complete()):  # every rank takes the same branch
            build_sharded(
                what=f"the pixel store {path}",
                final=path,
                parts=parts,
                plan=plan,
                is_complete=is_complete,
                compute_shards=compute,
                assemble=assemble,
                wait=wait,
                ranks=ranks,
                progress=progress,
            )
        store = cls(path)
        if store.bad and not skip_bad:
            first = store.bad[0]
            raise BenchError(
                f"the pixel store {path} excludes {len(store.bad)} image(s) that could not be decoded, e.g. "
                f"{first['path']} ({first['reason']}). Pass --skip-bad to use it with those rows excluded, or "
                "fix the files and delete the store."
            )
        return store


def _is_complete(path: Path, digest: str, size: int, settings: dict) -> bool:
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as handle:
            return (
                bool(handle.attrs.get("complete", False))
                and handle.attrs.get("manifest_digest") == digest
                and int(handle.attrs.get("size", -1)) == int(size)
                and json.loads(handle.attrs.get("pipeline", "{}")) == settings
            )
    except OSError:
        return False


def _run_jobs(jobs: list[_ShardJob], *, workers: int, progress: Progress, total: int, done: int, image_ids) -> None:
    if not jobs:
        return
    with progress.bar("decoding images", total=total, done=done) as bar:
        if workers and workers > 0:
            context = multiprocessing.get_context("spawn")
            with context.Pool(processes=min(workers, len(jobs))) as pool:
                for shard, rows, bad in pool.imap_unordered(_decode_shard, jobs):
                    if bad:
                        pool.terminate()
                        raise _bad_image_error(bad, image_ids[bad["row"]])
                    bar.advance(rows)
        else:
            for job in jobs:
                shard, rows, bad = _decode_shard(job)
                if bad:
                    raise _bad_image_error(bad, image_ids[bad["row"]])
                bar.advance(rows)


def _assemble(path: Path, parts: PartsFolder, plan: ShardPlan, *, image_ids, digest: str, size: int, settings: dict) -> None:
    with atomic_output(path) as temporary:
        with h5py.File(temporary, "w") as handle:
            pixels = handle.create_dataset("pixels", shape=(plan.n_rows, size, size), dtype=np.uint8)
            excluded = np.zeros(plan.n_rows, dtype=bool)
            bad_rows, bad_paths, bad_reasons = [], [], []
            for shard in range(plan.n_shards):
                start, stop = plan.bounds(shard)
                arrays = load_arrays(parts.shard_path(shard))
                if arrays["pixels"].shape != (stop - start, size, size):
                    raise BenchError(f"shard file {parts.shard_path(shard)} has the wrong shape; delete {parts.path} and run again")
                pixels[start:stop] = arrays["pixels"]
                excluded[start:stop] = arrays["excluded"]
                bad_rows.extend(arrays["bad_rows"].tolist())
                bad_paths.extend(arrays["bad_paths"].tolist())
                bad_reasons.extend(arrays["bad_reasons"].tolist())
            strings = h5py.string_dtype()
            handle.create_dataset("rows/image_id", data=np.asarray(image_ids, dtype=object), dtype=strings)
            handle.create_dataset("rows/excluded", data=excluded)
            handle.create_dataset("excluded/row", data=np.asarray(bad_rows, dtype=np.int64))
            handle.create_dataset("excluded/path", data=np.asarray(bad_paths, dtype=object), dtype=strings)
            handle.create_dataset("excluded/reason", data=np.asarray(bad_reasons, dtype=object), dtype=strings)
            handle.attrs["kind"] = STORE_KIND
            handle.attrs["manifest_digest"] = digest
            handle.attrs["size"] = int(size)
            handle.attrs["pipeline"] = json.dumps(settings, sort_keys=True)
            handle.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            handle.attrs["complete"] = True
