"""The terminal: one rich console for output (stdout), one for diagnostics (stderr), and `RichProgress`,
the `benchmark.core.progress.Progress` that the commands hand to libraries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


class _PerSecond(ProgressColumn):
    """Items per second since the bar started (not counting what an earlier run had done)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        done = task.completed - task.fields.get("resumed", 0)
        if not elapsed or done <= 0:
            return Text(f"-- {self.unit}/s")
        return Text(f"{done / elapsed:,.0f} {self.unit}/s")


class _RichBar:
    def __init__(self, bar: Progress, task):
        self._bar, self._task = bar, task

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def update(self, *, completed=None, total=None, description=None, status=None) -> None:
        changes = {key: value for key, value in (("completed", completed), ("total", total),
                                                 ("description", description)) if value is not None}
        if status is not None:
            changes["status"] = status
        self._bar.update(self._task, **changes)


class RichProgress:
    """Bars and notes on the terminal (`enabled=False`: notes and warnings only, no bars)."""

    def __init__(self, out: Console = console, err: Console = err_console, *, enabled: bool = True):
        self.out, self.err, self.enabled = out, err, enabled

    def note(self, message: str) -> None:
        self.out.print(message, highlight=False)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]{message}[/]", highlight=False)

    @contextlib.contextmanager
    def bar(self, description: str, *, total: int, done: int = 0, unit: str = "img",
            transient: bool = False) -> Iterator[_RichBar]:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _PerSecond(unit),
                   TextColumn("{task.fields[status]}"), TimeRemainingColumn()]
        with Progress(*columns, console=self.out, transient=transient, disable=not self.enabled) as bar:
            task = bar.add_task(description, total=total, completed=done, resumed=done, status="")
            yield _RichBar(bar, task)


def say_random_weights(target: Console, what: str, *, indent: str = "") -> None:
    """The one line every command prints under figures from random-init weights: `what` shows the tool works."""
    target.print(f"{indent}[yellow]random weights:[/] {what} show the tool works; they are no finding about X-rays "
                 "or an encoder.", highlight=False)


def markdown_table(header, rows) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def print_table(target, title: str, header, rows, *, caption: str | None = None, markdown: bool = False) -> None:
    """Print a table on the console `target`: rich (wrapping cells), or markdown text with the caption below."""
    if markdown:
        text = markdown_table(header, rows) + ("\n\n" + caption if caption else "")
        target.print(text, highlight=False, markup=False, soft_wrap=True)
        return
    from rich.table import Table

    table = Table(title=title, caption=caption)
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    target.print(table)
