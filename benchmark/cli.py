"""The `bench` command: one module per subcommand under `benchmark.commands`.

Each command module exposes `register(subparsers, common)`; heavy imports (torch, models) happen inside the
command's function so that `bench --help` stays fast. A `BenchError` is printed without a traceback unless
`--verbose` is given.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark import __version__
from benchmark.core.errors import BenchError, os_error_message

COMMAND_MODULES = [
    "benchmark.commands.data",
    "benchmark.commands.models",
    "benchmark.commands.extract",
    "benchmark.commands.fit_heads",
    "benchmark.commands.runs",
    "benchmark.commands.finetune",
    "benchmark.commands.leaderboard",
    "benchmark.commands.tradeoff",
    "benchmark.commands.probe",
    "benchmark.commands.prompt_sensitivity",
    "benchmark.commands.report",
    "benchmark.commands.run",
    "benchmark.commands.demo",
    "benchmark.commands.perf",
]


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (also accepted before the subcommand)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--workdir",
        default=argparse.SUPPRESS,
        help="where caches, stores and runs go (default: $BENCH_HOME, else ~/.cache/cxr-fairbench)",
    )
    parent.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    from benchmark.commands.options import Parser

    parser = Parser(
        prog="bench",
        description="cxr-fairbench: how well, and how fairly, CLIP-like foundation models classify chest X-rays.",
    )
    parser.add_argument("--version", action="version", version=f"cxr-fairbench {__version__}")
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", "-v", action="store_true", default=False, help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def dispatch(argv: list[str], *, raise_errors: bool = False) -> int:
    """Run one `bench` command line in this process (used by `bench demo` to chain the real commands)."""
    args = build_parser().parse_args(argv)
    if raise_errors:
        return int(args.func(args) or 0)
    return _run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for provenance (bench report)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _run(args)


def _run(args) -> int:
    from rich.markup import escape

    from benchmark.ui import err_console

    try:
        result = args.func(args)
    except BenchError as error:
        if args.verbose:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    except OSError as error:
        message = os_error_message(error)
        if message is None or args.verbose:
            raise
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
