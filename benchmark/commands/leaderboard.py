"""`bench leaderboard`: fairness-ranked leaderboard over the runs of a task"""

from __future__ import annotations

from benchmark.errors import NotBuiltYet


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("leaderboard", parents=[common], help="fairness-ranked leaderboard over the runs of a task", description="fairness-ranked leaderboard over the runs of a task")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltYet("`bench leaderboard` is not built yet in this version.")
