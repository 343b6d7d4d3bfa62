"""`bench fit-heads`: train cheap heads (linear, mlp, zeroshot) off an embedding store"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("fit-heads", parents=[common], help="train cheap heads (linear, mlp, zeroshot) off an embedding store", description="train cheap heads (linear, mlp, zeroshot) off an embedding store")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench fit-heads` is not built yet in this version.")
