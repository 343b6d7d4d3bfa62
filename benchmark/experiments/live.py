"""What `bench run` shows: a live table of the jobs (on a terminal) or one line per change (elsewhere), and the
summary at the end.

Live: a header with the counts (pending, running, done, cached, failed, blocked), the time elapsed and an
ETA, then the jobs: all of them in a small plan, else the running and failed ones and the latest finished.
"""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from benchmark.experiments.plan import Job
from benchmark.experiments.tracker import Tracker

STYLES = {"pending": "dim", "running": "cyan", "done": "green", "cached": "blue", "failed": "bold red",
          "blocked": "yellow", "interrupted": "yellow"}
ORDER = ("done", "cached", "running", "pending", "failed", "blocked", "interrupted")
SHOW_ALL_UP_TO = 24
REFRESH_S = 0.25


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def counts_text(tracker: Tracker) -> Text:
    counts = tracker.counts()
    text = Text()
    for state in ORDER:
        if counts.get(state):
            text.append(f"{counts[state]} {state}  ", style=STYLES[state])
    return text


class LiveView:
    """`refresh(tracker, slots)` redraws (at most every REFRESH_S); `event(job, run)` notes a change."""

    def __init__(self, console: Console, title: str, *, live: bool = True):
        self.console, self.title = console, title
        self.live = Live(console=console, auto_refresh=False, transient=False) if live and console.is_terminal else None
        self.last = 0.0

    def __enter__(self) -> "LiveView":
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def event(self, job: Job, run) -> None:
        if self.live is None:
            took = f" ({run.elapsed:.1f} s)" if run.state in ("done", "failed") and run.elapsed else ""
            self.console.print(f"{run.state:>8}  {job.id}{took}", style=STYLES.get(run.state), highlight=False)

    def refresh(self, tracker: Tracker, slots: int, *, force: bool = False) -> None:
        if self.live is None or (not force and time.perf_counter() - self.last < REFRESH_S):
            return
        self.last = time.perf_counter()
        self.live.update(self.render(tracker, slots), refresh=True)

    def render(self, tracker: Tracker, slots: int) -> Group:
        elapsed = time.perf_counter() - tracker.started
        header = Text(f"{self.title} · {len(tracker.plan)} jobs · elapsed {clock(elapsed)} · "
                      f"ETA {clock(tracker.eta(slots))}\n", style="bold")
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for column in ("job", "state", "elapsed", "note"):
            table.add_column(column, no_wrap=column != "note", overflow="ellipsis")
        for job in self.shown(tracker):
            run = tracker[job.id]
            note = run.error or (f"~{clock(run.expected_s)} last time" if run.state == "pending" and run.expected_s
                                 else "")
            table.add_row(Text(job.id), Text(run.state, style=STYLES[run.state]),
                          clock(run.elapsed) if run.started else "", Text(note))
        hidden = len(tracker.plan) - table.row_count
        footer = Text(f"… {hidden} more jobs" if hidden > 0 else "", style="dim")
        return Group(header, counts_text(tracker), table, footer)

    def shown(self, tracker: Tracker) -> list[Job]:
        jobs = tracker.plan.jobs
        if len(jobs) <= SHOW_ALL_UP_TO:
            return jobs
        active = [job for job in jobs if tracker[job.id].state in ("running", "failed")]
        finished = sorted((job for job in jobs if tracker[job.id].finished and tracker[job.id].state != "failed"),
                          key=lambda job: tracker[job.id].finished)[-5:]
        waiting = [job for job in jobs if tracker[job.id].state == "pending"][:5]
        return finished + active + waiting
