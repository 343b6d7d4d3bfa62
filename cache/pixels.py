"""The pixel store: every image of a dataset decoded once, into uint8 HDF5, shared by all encoders.

Decoding a 1024-px PNG costs ~16-18 ms per core, far more than a GPU encoder spends on it, so extraction
reads pre-decoded pixels instead (decoding: `cache.decode`). File:
`workdir/pixels/<manifest-digest[:16]>-<size>px.h5`, rows in manifest order:

    pixels             [N, size, size] uint8   (zeros for excluded rows)
    rows/image_id      [N] str
    rows/excluded      [N] bool                 images that could not be used (only with skip_bad)
    rows/size, rows/mtime_ns [N] int64          each file's fingerprint when decoded (`cache.fingerprints`)
    rows/sha256        [N, 32] uint8            each file's content hash
    excluded/row       [E] int64                which rows were excluded, and why:
    excluded/path      [E] str
    excluded/reason    [E] str
    attrs: kind, manifest_digest, size, pipeline (JSON of the decode settings), content_digest, created, complete

`content_digest` covers the manifest, the settings and every row's content hash: embedding stores built from
the pixels carry it in their identity, so a changed image never reuses stale pixels or embeddings. Opening a
store checks each file's size and modification time (one stat per file) and re-decodes only the files whose
bytes changed; `verify_content=True` hashes every file. Built in shards (see `cache.shards`): crash-safe,
resumable, optionally in parallel worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from benchmark.core.distributed import SINGLE, Ranks
from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress
from benchmark.core.workdir import Workdir
from cache.build import build_sharded
from cache.decode import DEFAULT_RESIZE, RESIZE_FILTERS, check_resize, decode_image
from cache.fingerprints import Fingerprints
from cache.locking import exclusive
from cache.pixel_build import (
    PIXEL_PIPELINE_VERSION,
    PIXEL_SHARD_ROWS,
    STORE_KIND,
    StoreJob as _StoreJob,
    is_current as _is_current,
    pipeline_settings,
)

__all__ = ["DEFAULT_RESIZE", "PIXEL_PIPELINE_VERSION", "RESIZE_FILTERS", "PixelStore", "check_resize", "decode_image",
           "pipeline_settings"]


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
            self.content_digest = str(handle.attrs["content_digest"])
            self.fingerprints = Fingerprints(handle["rows/size"][:], handle["rows/mtime_ns"][:],
                                             handle["rows/sha256"][:])
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
    def open_or_build(cls, manifest, root, *, size: int, workdir, resize: str = DEFAULT_RESIZE, workers: int = 0,
                      skip_bad: bool = False,
                      keep_degenerate: bool = False, verify_content: bool = False, progress: Progress = SILENT,
                      wait: bool = True, ranks: Ranks = SINGLE, shard_rows: int = PIXEL_SHARD_ROWS) -> "PixelStore":
        """The pixel store of `manifest` at `size`: reused when every file is unchanged, refreshed where files
        changed (only those rows decoded again), built (resuming what an earlier run finished) otherwise."""
        if manifest.height == 0:
            raise BenchError("the manifest has no rows: there are no images to decode. Check the dataset root and its CSV.")
        job = _StoreJob(manifest, Path(root), size, Workdir.of(workdir), shard_rows, resize=resize, skip_bad=skip_bad,
                        keep_degenerate=keep_degenerate, progress=progress)
        state = ranks.share(job.state(verify_content) if ranks.is_main else None)
        if state == "missing":
            build_sharded(what=f"the pixel store {job.path}", final=job.path, parts=job.parts, plan=job.plan,
                          is_complete=lambda: _is_current(job.path, job.digest, size, job.settings),
                          compute_shards=lambda shards: job.decode(shards, workers),
                          assemble=job.assemble, wait=wait, ranks=ranks, progress=progress)
        elif isinstance(state, list):
            failure = None
            if ranks.is_main:
                try:
                    with exclusive(job.path.with_name(job.path.name + ".lock"), what=f"the pixel store {job.path}",
                                   wait=wait, progress=progress):
                        job.refresh(np.asarray(state, dtype=np.int64))
                except BenchError as error:
                    failure = str(error)
            failure = ranks.share(failure)
            if failure:
                raise BenchError(failure)
        store = cls(job.path)
        if store.bad and not skip_bad:
            first = store.bad[0]
            raise BenchError(
                f"the pixel store {job.path} excludes {len(store.bad)} image(s) that could not be used, e.g. "
                f"{first['path']} ({first['reason']}). Pass --skip-bad to use it with those rows excluded, or "
                "fix the files and run again."
            )
        return store

    @classmethod
    def current(cls, manifest, root, *, size: int, workdir, resize: str = DEFAULT_RESIZE,
                verify_content: bool = False, keep_degenerate: bool = False) -> "PixelStore | None":
        """The complete store of `manifest` at `size` when every file is unchanged since it was built (and, with
        `keep_degenerate`, no image is excluded as degenerate); None otherwise (nothing is written either way)."""
        job = _StoreJob(manifest, Path(root), size, Workdir.of(workdir), PIXEL_SHARD_ROWS, resize=resize,
                        keep_degenerate=keep_degenerate)
        return cls(job.path) if job.state(verify_content) == "fresh" else None
