"""How libraries report progress without knowing the console: a `Progress` object they are handed.

    with progress.bar("embedding (tiny-clip)", total=n) as bar:   # a bar counting rows
        bar.advance(64)
        bar.update(status="loss 0.41")                          # a short status beside it
    progress.note("cache hit")                                  # a line of information
    progress.warn("waiting for another writer")                 # a line for the diagnostics stream

Libraries take `progress: Progress = SILENT`; the application passes a rich implementation
(`benchmark.ui.RichProgress`). Nothing here prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Bar(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def update(self, *, completed: int | None = None, total: int | None = None, description: str | None = None,
               status: str | None = None) -> None: ...


class Progress(Protocol):
    def note(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def bar(self, description: str, *, total: int, done: int = 0, unit: str = "img",
            transient: bool = False) -> contextlib.AbstractContextManager[Bar]: ...


class _SilentBar:
    def advance(self, n: int = 1) -> None:
        return None

    def update(self, **_changes) -> None:
        return None


class Silent:
    """A `Progress` that shows nothing."""

    def note(self, message: str) -> None:
        return None

    def warn(self, message: str) -> None:
        return None

    @contextlib.contextmanager
    def bar(self, description: str, *, total: int, done: int = 0, unit: str = "img",
            transient: bool = False) -> Iterator[Bar]:
        yield _SilentBar()


SILENT = Silent()
