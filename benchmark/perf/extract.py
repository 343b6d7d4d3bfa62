"""`bench perf extract`."""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def add_arguments(parser) -> None:
    return None


def run(args) -> int:
    raise NotBuiltYet("`bench perf extract` is not built yet in this version.")
