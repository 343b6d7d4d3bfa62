"""`bench models`: list the encoder registry and whether weights are found locally"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("models", parents=[common], help="list the encoder registry and whether weights are found locally", description="list the encoder registry and whether weights are found locally")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench models` is not built yet in this version.")
