"""Crash-safe file writing: write beside the target, flush to disk, then rename over it.

`os.replace` is atomic on POSIX, so a reader (or a run resumed after `kill -9`) sees either the old file or
the complete new one, never a half-written one. The temporary lives in the target's folder (the rename stays
on one filesystem) and carries the writer's pid, so concurrent writers never share one and a later run can
tell a dead writer's leftovers (`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def temporary_path(target: Path) -> Path:
    """A temporary name beside `target`: `.<name>.tmp-<pid>`."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success fsync it and rename it to `target`; on failure remove it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except OSError as error:
        if error.filename is None and error.errno is not None:  # a write through a file object names no file
            raise OSError(error.errno, error.strerror or os.strerror(error.errno), str(target)) from error
        raise
    finally:
        if temporary.exists():
            temporary.unlink()


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically; return the target."""
    with atomic_output(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike, value: Any) -> Path:
    """Write `value` as indented, key-sorted JSON to `target` atomically."""
    return write_text(target, json.dumps(value, indent=2, sort_keys=True) + "\n")


def remove_stale_temporaries(folder: Path, name: str = "*", *, only_dead_writers: bool = True) -> None:
    """Delete temporaries (of files called `name`, a glob) left by writers that died (their pid no longer runs;
    with `only_dead_writers=False`, all of them: for callers holding the file's lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.glob(f".{name}.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if not only_dead_writers or (pid.isdigit() and not pid_alive(int(pid))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
