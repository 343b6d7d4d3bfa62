"""Fingerprints of image files: how a cache notices that an image changed.

Every decoded image is recorded with its size, modification time (ns) and the sha256 of its bytes. A cached
store is fresh when every file still has the recorded size and modification time (one `stat` per file, as
make and rsync decide); a file whose size or time changed is hashed again and counts as changed only when its
bytes did (a `touch` re-decodes nothing). `verify_content=True` hashes every file. A file that was read before
and is now missing or unreadable counts as changed, so a store is never reused over it; one that could not be
read when the store was built (recorded with size -1) is unchanged while it stays unreadable.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

HASH_BYTES = 32
READ_CHUNK = 1 << 20


def sha256_of_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(data).digest(), dtype=np.uint8)


def sha256_of_file(path: str) -> np.ndarray | None:
    """The sha256 of a file's bytes as uint8 [32]; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(READ_CHUNK), b""):
                digest.update(chunk)
    except OSError:
        return None
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def stat_files(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(size, mtime_ns) int64 arrays; -1 for a file that cannot be stat'ed."""
    sizes = np.full(len(paths), -1, dtype=np.int64)
    times = np.full(len(paths), -1, dtype=np.int64)
    for row, path in enumerate(paths):
        try:
            info = os.stat(path)
        except OSError:
            continue
        sizes[row], times[row] = info.st_size, info.st_mtime_ns
    return sizes, times


@dataclass(frozen=True)
class Fingerprints:
    """What a store recorded of each row's file."""

    size: np.ndarray  # int64 [n]
    mtime_ns: np.ndarray  # int64 [n]
    sha256: np.ndarray  # uint8 [n, 32] (zeros for a row whose file could not be read)

    def content_digest(self, *parts: str) -> str:
        """sha256 hex over `parts` and every row's content hash, in row order."""
        digest = hashlib.sha256("|".join(parts).encode())
        digest.update(np.ascontiguousarray(self.sha256).tobytes())
        return digest.hexdigest()


def changed_rows(paths: list[str], recorded: Fingerprints, *, verify_content: bool = False) -> np.ndarray:
    """Rows whose file differs from what was recorded (bytes changed, or missing / unreadable)."""
    if verify_content:
        suspects = np.arange(len(paths))
    else:
        sizes, times = stat_files(paths)
        suspects = np.flatnonzero((sizes != recorded.size) | (times != recorded.mtime_ns))
    changed = []
    for row in suspects:
        content = sha256_of_file(paths[row])
        if content is None:
            if recorded.size[row] >= 0:  # it was read before and cannot be now
                changed.append(row)
        elif not np.array_equal(content, recorded.sha256[row]):
            changed.append(row)
    return np.asarray(changed, dtype=np.int64)
