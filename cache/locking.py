"""One writer per store: an advisory file lock (filelock) beside the store.

A second process that wants to write the same store either waits, saying so, or (with `wait=False`, the
CLI's `--no-wait`) stops with a clear message. Readers never need the lock: complete stores appear by an
atomic rename.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress


def _owner_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".owner")


def _describe_owner(lock_path: Path) -> str:
    try:
        return _owner_path(lock_path).read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def exclusive(lock_path: Path, *, what: str, wait: bool = True, progress: Progress = SILENT) -> Iterator[None]:
    """Hold the lock at `lock_path` while writing `what` (a phrase such as "the embedding store X")."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = _describe_owner(lock_path)
        if not wait:
            raise BenchError(
                f"{owner} is already writing {what} (lock {lock_path}). Wait for it to finish and run again "
                "(it will then be a cache hit), or drop --no-wait to wait for it."
            ) from None
        progress.warn(
            f"waiting: {owner} is writing {what} (lock {lock_path}); this run continues when it is "
            "done. Use --no-wait to stop instead."
        )
        lock.acquire()
    try:
        with contextlib.suppress(OSError):
            _owner_path(lock_path).write_text(f"process {os.getpid()} on {socket.gethostname()}\n")
        yield
    finally:
        with contextlib.suppress(OSError):
            _owner_path(lock_path).unlink()
        lock.release()
