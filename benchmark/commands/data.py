"""`bench data`: synthesise or check a dataset in the NIH ChestX-ray14 layout"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("data", parents=[common], help="synthesise or check a dataset in the NIH ChestX-ray14 layout", description="synthesise or check a dataset in the NIH ChestX-ray14 layout")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench data` is not built yet in this version.")
