"""Building and refreshing a pixel store (the reader is `cache.pixels.PixelStore`).

A store is built in shards (`cache.build.build_sharded`: locked, resumable, optionally in worker processes),
each shard decoded by `cache.decode.decode_shard` with its files' fingerprints. When an existing store's files
changed, `StoreJob.refresh` decodes only the changed rows and writes the store again (copying the rest), into
a temporary file renamed into place.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import h5py
import numpy as np

from benchmark.core.atomic import atomic_output
from benchmark.core.errors import BenchError
from benchmark.core.identity import canonical_json
from benchmark.core.manifest import manifest_digest
from benchmark.core.progress import SILENT, Progress
from benchmark.core.workdir import Workdir
from cache.decode import (
    DECODE_ERRORS,
    DEFAULT_RESIZE,
    DegenerateImage,
    RESIZE_FILTERS,
    ShardJob,
    bad_image_message,
    check_resize,
    decode_bytes,
    decode_shard,
)
from cache.fingerprints import Fingerprints, changed_rows, sha256_of_bytes
from cache.shards import PartsFolder, ShardPlan, load_arrays

PIXEL_PIPELINE_VERSION = "2"
"""2: per-row fingerprints and the content digest (stores of version 1 are rebuilt once)."""
PIXEL_SHARD_ROWS = 256
STORE_KIND = "cxr-fairbench pixel store"
ROW_ARRAYS = ("pixels", "excluded", "size", "mtime_ns", "sha256")


def pipeline_settings(size: int, resize: str = DEFAULT_RESIZE) -> dict:
    """What determines the pixels (goes into every embedding store identity built from them)."""
    pad, how = RESIZE_FILTERS[check_resize(resize)]
    return {
        "version": PIXEL_PIPELINE_VERSION,
        "size": int(size),
        "mode": "L (8-bit grayscale; 16-bit scaled by 1/257; colour converted by ITU-R 601-2 luma; alpha dropped)",
        "pad": pad,
        "resize": how,
        "dtype": "uint8",
    }


def is_current(path: Path, digest: str, size: int, settings: dict) -> bool:
    """A complete store of this manifest, size and decode settings (its files not checked)."""
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as handle:
            return (
                bool(handle.attrs.get("complete", False))
                and handle.attrs.get("kind") == STORE_KIND
                and handle.attrs.get("manifest_digest") == digest
                and int(handle.attrs.get("size", -1)) == int(size)
                and json.loads(handle.attrs.get("pipeline", "{}")) == settings
            )
    except (OSError, ValueError):
        return False


class StoreJob:
    """The pixel store of one manifest at one size: where it goes, its shards, and how to (re)build it."""

    def __init__(self, manifest, root: Path, size: int, workdir: Workdir, shard_rows: int, *,
                 resize: str = DEFAULT_RESIZE, skip_bad: bool = False, keep_degenerate: bool = False,
                 progress: Progress = SILENT):
        self.size, self.skip_bad, self.keep_degenerate, self.progress = size, skip_bad, keep_degenerate, progress
        self.resize = check_resize(resize)
        self.digest = manifest_digest(manifest)
        self.path = workdir.pixel_store(self.digest, size, resize=self.resize)
        self.image_ids = manifest["image_id"].to_list()
        self.paths = [str(root / relative) for relative in manifest["path"].to_list()]
        self.settings = pipeline_settings(size, self.resize)
        self.plan = ShardPlan(len(self.image_ids), shard_rows)
        identity = canonical_json({"manifest_digest": self.digest, "pipeline": self.settings, "shard_rows": shard_rows})
        self.parts = PartsFolder(self.path.with_name(self.path.stem + ".parts"), identity)

    def state(self, verify_content: bool) -> str | list[int]:
        """"missing" (no current store), "fresh" (every file unchanged) or the rows whose files changed."""
        if not is_current(self.path, self.digest, self.size, self.settings):
            return "missing"
        with h5py.File(self.path, "r") as handle:
            recorded = Fingerprints(handle["rows/size"][:], handle["rows/mtime_ns"][:], handle["rows/sha256"][:])
            degenerate = [int(row) for row, reason in zip(handle["excluded/row"][:], handle["excluded/reason"].asstr()[:])
                          if reason.startswith(DegenerateImage.__name__)] if self.keep_degenerate else []
        changed = sorted(set(changed_rows(self.paths, recorded, verify_content=verify_content).tolist()) | set(degenerate))
        return "fresh" if not changed else changed

    def decode(self, shards: list[int], workers: int) -> None:
        jobs = []
        for shard in shards:
            start, stop = self.plan.bounds(shard)
            jobs.append(ShardJob(shard, start, tuple(self.paths[start:stop]), self.size, self.skip_bad,
                                 str(self.parts.shard_path(shard)), self.keep_degenerate, self.resize))
        if not jobs:
            return
        done = self.plan.n_rows - sum(len(job.paths) for job in jobs)
        with self.progress.bar("decoding images", total=self.plan.n_rows, done=done) as bar:
            if workers and workers > 0:
                with multiprocessing.get_context("spawn").Pool(processes=min(workers, len(jobs))) as pool:
                    for _, rows, bad in pool.imap_unordered(decode_shard, jobs):
                        if bad:
                            pool.terminate()
                            raise BenchError(bad_image_message(bad, self.image_ids[bad["row"]]))
                        bar.advance(rows)
            else:
                for job in jobs:
                    _, rows, bad = decode_shard(job)
                    if bad:
                        raise BenchError(bad_image_message(bad, self.image_ids[bad["row"]]))
                    bar.advance(rows)

    def assemble(self) -> None:
        """One store from every finished shard."""
        n, size = self.plan.n_rows, self.size
        arrays = {name: [] for name in ROW_ARRAYS[1:]}
        bad = {field: [] for field in ("rows", "paths", "reasons")}
        with atomic_output(self.path) as temporary, h5py.File(temporary, "w") as handle:
            pixels = handle.create_dataset("pixels", shape=(n, size, size), dtype=np.uint8)
            for shard in range(self.plan.n_shards):
                start, stop = self.plan.bounds(shard)
                shard_arrays = load_arrays(self.parts.shard_path(shard))
                if shard_arrays["pixels"].shape != (stop - start, size, size) or "sha256" not in shard_arrays:
                    raise BenchError(f"shard file {self.parts.shard_path(shard)} is not of this version; delete "
                                     f"{self.parts.path} and run again")
                pixels[start:stop] = shard_arrays["pixels"]
                for name in arrays:
                    arrays[name].append(shard_arrays[name])
                for field in bad:
                    bad[field].extend(shard_arrays[f"bad_{field}"].tolist())
            rows = {name: np.concatenate(values) for name, values in arrays.items()}
            self._write_rest(handle, rows, bad["rows"], bad["paths"], bad["reasons"])

    def _write_rest(self, handle, rows: dict, bad_rows, bad_paths, bad_reasons) -> None:
        strings = h5py.string_dtype()
        handle.create_dataset("rows/image_id", data=np.asarray(self.image_ids, dtype=object), dtype=strings)
        for name in ROW_ARRAYS[1:]:
            handle.create_dataset(f"rows/{name}", data=rows[name])
        handle.create_dataset("excluded/row", data=np.asarray(bad_rows, dtype=np.int64))
        handle.create_dataset("excluded/path", data=np.asarray(bad_paths, dtype=object), dtype=strings)
        handle.create_dataset("excluded/reason", data=np.asarray(bad_reasons, dtype=object), dtype=strings)
        fingerprints = Fingerprints(rows["size"], rows["mtime_ns"], rows["sha256"])
        handle.attrs["kind"] = STORE_KIND
        handle.attrs["manifest_digest"] = self.digest
        handle.attrs["size"] = int(self.size)
        handle.attrs["pipeline"] = json.dumps(self.settings, sort_keys=True)
        excluded = [f"excluded:{','.join(str(int(row)) for row in bad_rows)}"] if len(bad_rows) else []
        handle.attrs["content_digest"] = fingerprints.content_digest(self.digest, canonical_json(self.settings),
                                                                     *excluded)  # pixels kept later: new embeddings
        handle.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.attrs["complete"] = True

    def refresh(self, changed: np.ndarray) -> None:
        """Decode the changed rows again and rewrite the store around them (the rest copied as it was)."""
        why = " (or were excluded as degenerate and are now kept)" if self.keep_degenerate else ""
        self.progress.note(f"{changed.size} image(s) changed since {self.path.name} was built{why} (e.g. "
                           f"{self.paths[changed[0]]}); decoding them again")
        with h5py.File(self.path, "r") as old:
            rows = {name: old["pixels"][:] if name == "pixels" else old[f"rows/{name}"][:] for name in ROW_ARRAYS}
            bad = {int(r): (p, why) for r, p, why in zip(old["excluded/row"][:], old["excluded/path"].asstr()[:],
                                                       old["excluded/reason"].asstr()[:])}
        for row in changed.tolist():
            bad.pop(row, None)
            reason = self._decode_row(row, rows)
            if reason is not None:
                if not self.skip_bad:
                    raise BenchError(bad_image_message({"row": row, "path": self.paths[row], "reason": reason},
                                                       self.image_ids[row]))
                bad[row] = (self.paths[row], reason)
        order = sorted(bad)
        with atomic_output(self.path) as temporary, h5py.File(temporary, "w") as handle:
            handle.create_dataset("pixels", data=rows["pixels"])
            self._write_rest(handle, rows, order, [bad[r][0] for r in order], [bad[r][1] for r in order])

    def _decode_row(self, row: int, rows: dict) -> str | None:
        """Decode one row into `rows` in place; the reason it cannot be used, or None."""
        path = self.paths[row]
        rows["pixels"][row], rows["excluded"][row] = 0, True
        rows["size"][row], rows["mtime_ns"][row], rows["sha256"][row] = -1, -1, 0  # unreadable until read
        try:
            info = Path(path).stat()
            data = Path(path).read_bytes()
            rows["size"][row], rows["mtime_ns"][row] = info.st_size, info.st_mtime_ns
            rows["sha256"][row] = sha256_of_bytes(data)
            rows["pixels"][row] = decode_bytes(data, self.size, self.resize, keep_degenerate=self.keep_degenerate)
        except DECODE_ERRORS as error:
            return f"{type(error).__name__}: {error}"
        rows["excluded"][row] = False
        return None
