"""`bench demo`: the whole flow on the embedded synthetic default"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("demo", parents=[common], help="the whole flow on the embedded synthetic default", description="the whole flow on the embedded synthetic default")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench demo` is not built yet in this version.")
