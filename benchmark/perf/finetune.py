"""`bench perf finetune`."""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def add_arguments(parser) -> None:
    return None


def run(args) -> int:
    raise NotBuiltYet("`bench perf finetune` is not built yet in this version.")
