"""`bench extract`: run a frozen encoder once over a dataset into an HDF5 embedding store"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("extract", parents=[common], help="run a frozen encoder once over a dataset into an HDF5 embedding store", description="run a frozen encoder once over a dataset into an HDF5 embedding store")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench extract` is not built yet in this version.")
