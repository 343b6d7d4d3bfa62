"""Benchmarks behind `bench perf`: each module has `add_arguments(parser)` and `run(args)`, measures side by side
in one run, and prints a table (or JSON with `--json`) through `emit`."""

from __future__ import annotations


def emit(result: dict, args, render) -> int:
    """Print `result` as JSON (`--json`) or as the table `render(result)` returns; exit code 0."""
    import json

    from benchmark.ui import console

    if args.json:
        console.print_json(json.dumps(result))
    else:
        console.print(render(result))
    return 0
