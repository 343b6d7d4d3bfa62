"""A rich progress bar counting rows (images), with images per second."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text


class ImagesPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        done = task.completed - task.fields.get("resumed", 0)
        if not elapsed or done <= 0:
            return Text("-- img/s")
        return Text(f"{done / elapsed:,.0f} img/s")


@contextlib.contextmanager
def rows_progress(description: str, *, total: int, done: int = 0, enabled: bool = True, console=None) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; shows a bar when `enabled` (and does nothing otherwise)."""
    if not enabled:
        yield lambda n: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), ImagesPerSecond(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, completed=done, resumed=done)
        yield lambda n: bar.advance(task, n)
