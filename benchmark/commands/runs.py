"""`bench runs`: list prediction runs in the workdir"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("runs", parents=[common], help="list prediction runs in the workdir", description="list prediction runs in the workdir")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench runs` is not built yet in this version.")
