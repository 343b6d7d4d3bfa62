"""Crash-safe file writing: write beside the target, flush to disk, then rename over it.

`os.replace` is atomic on POSIX, so a reader (or a run resumed after `kill -9`) sees either the old file or the
complete new one, never a half-written one. Temporary names carry the writer's pid so concurrent writers of
the same file never share a temporary.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def temporary_path(target: Path) -> Path:
    """A temporary name beside `target` (same folder, so the final rename stays on one filesystem)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success fsync it and rename it to `target`; on failure remove it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def save_arrays(target: Path, **arrays: np.ndarray) -> None:
    """Write named arrays as one uncompressed `.npz`, atomically."""
    with atomic_output(target) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)


def load_arrays(source: Path) -> dict[str, np.ndarray]:
    """Read a `.npz` written by `save_arrays` (no pickles)."""
    with np.load(source, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def remove_stale_temporaries(folder: Path, name: str = "*", *, only_dead_writers: bool = True) -> None:
    """Delete temporaries (of files called `name`, a glob) left by writers that died (their pid no longer runs;
    with `only_dead_writers=False`, all of them: for callers holding the file's lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.glob(f".{name}.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if not only_dead_writers or (pid.isdigit() and not _pid_alive(int(pid))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
