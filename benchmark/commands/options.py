"""Argument types and the parser class every `bench` command uses.

Numeric options are checked where they are parsed (`--mlp-epochs -1` is refused with one line naming the
option and the value), and a mistyped option is named as such with the nearest known one suggested
(`--modle` -> "unknown option --modle; did you mean --model?"), instead of argparse's "required: --model".
"""

from __future__ import annotations

import argparse
import difflib
import sys


def _number(kind, text: str):
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    value = _number(float, text)
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def non_negative_float(text: str) -> float:
    value = _number(float, text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be 0 or a positive number")
    return value


def fraction(text: str) -> float:
    value = _number(float, text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1 (exclusive)")
    return value


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that name the command's help, and suggestions for mistyped options."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        self._check_options(args)
        return super().parse_known_args(args, namespace)

    def _check_options(self, args: list[str]) -> None:
        """Name the first `--option` this parser (or the subcommand it leads to) does not know."""
        parser, known = self, set(self._option_string_actions)
        for position, token in enumerate(args):
            if token == "--":
                return
            sub = parser._subcommand(token)
            if sub is not None:
                return sub._check_options(args[position + 1:])
            if token.startswith("--"):
                name = token.split("=", 1)[0]
                if name not in known and not any(option.startswith(name) for option in known):
                    close = difflib.get_close_matches(name, sorted(known), n=1)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    self.error(f"unknown option {name}{hint}")

    def _subcommand(self, token: str):
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and token in action.choices:
                return action.choices[token]
        return None

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
