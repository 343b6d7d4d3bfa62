"""`bench finetune`: LoRA or full fine-tuning of an encoder's image tower, end to end"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("finetune", parents=[common], help="LoRA or full fine-tuning of an encoder's image tower, end to end", description="LoRA or full fine-tuning of an encoder's image tower, end to end")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench finetune` is not built yet in this version.")
