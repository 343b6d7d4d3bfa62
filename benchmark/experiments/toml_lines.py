"""Where each key of a TOML file is written: line numbers for error messages (`tomllib` gives values only).

    lines = KeyLines(text)
    lines.line_of(("methods", "lora", "epochs"))   # -> 23; a key not written falls back to its table's line

The scanner knows table headers (`[a.b]`, `[[a]]`), dotted and quoted keys, inline tables (`{ k = 1 }`, also
nested) and values that run over several lines (arrays, multi-line strings). It only locates keys; `tomllib`
has already checked that the file is valid TOML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_STRING_DELIMITERS = ('"""', "'''", '"', "'")


def _read_key(text: str, i: int) -> tuple[tuple[str, ...], int]:
    """The dotted key starting at `text[i]` (spaces allowed around dots) and the index just after it."""
    parts = []
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] in "\"'":
            quote = text[i]
            end = i + 1
            while end < len(text) and text[end] != quote:
                end += 2 if quote == '"' and text[end] == "\\" else 1
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            match = _BARE_KEY.match(text, i)
            if not match:
                return tuple(parts), i
            parts.append(match.group())
            i = match.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(parts), i


class KeyLines:
    """The line (1-based) on which each key path of a TOML text is first written."""

    def __init__(self, text: str):
        self._lines: dict[tuple[str, ...], int] = {}
        self._table: tuple[str, ...] = ()
        self._stack: list[list] = []  # open brackets of a value: [kind "[" or "{", path, expecting a key]
        self._string: str | None = None  # the delimiter of a string still open at the end of a line
        self._value_path: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            self._scan_line(line, number)

    def line_of(self, path: Sequence[str]) -> int | None:
        """The line of `path`, else of the nearest table above it that is written, else None."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def _record(self, path: tuple[str, ...], number: int) -> None:
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def _scan_line(self, line: str, number: int) -> None:
        i = 0
        if not self._stack and self._string is None:
            stripped = line.lstrip()
            i = len(line) - len(stripped)
            if not stripped or stripped.startswith("#"):
                return
            if stripped.startswith("["):
                key, _ = _read_key(line, i + (2 if stripped.startswith("[[") else 1))
                self._table = key
                self._record(key, number)
                return
            key, i = _read_key(line, i)
            if not key or i >= len(line) or line[i] != "=":
                return
            self._value_path = self._table + key
            self._record(self._value_path, number)
            i += 1
        self._scan_value(line, i, number)

    def _scan_value(self, line: str, i: int, number: int) -> None:
        """Walk a value's characters: strings, brackets, and the keys of inline tables."""
        while i < len(line):
            if self._string is not None:
                end = self._string_end(line, i)
                if end < 0:
                    return
                self._string, i = None, end
                continue
            char = line[i]
            if char == "#":
                return
            if self._stack and self._stack[-1][0] == "{" and self._stack[-1][2] and char not in " \t,}":
                key, i = _read_key(line, i)
                self._value_path = self._stack[-1][1] + key
                self._record(self._value_path, number)
                self._stack[-1][2] = False
                i += 1  # the "="
                continue
            delimiter = next((d for d in _STRING_DELIMITERS if line.startswith(d, i)), None)
            if delimiter:
                self._string, i = delimiter, i + len(delimiter)
            elif char in "[{":
                self._stack.append([char, self._value_path, char == "{"])
                i += 1
            elif char in "]}":
                if self._stack:
                    self._stack.pop()
                i += 1
            else:
                if char == "," and self._stack and self._stack[-1][0] == "{":
                    self._stack[-1][2] = True
                i += 1

    def _string_end(self, line: str, i: int) -> int:
        """Index just after the closing delimiter of the open string, or -1 when it stays open past this line."""
        delimiter = self._string
        while i < len(line):
            if delimiter == '"' or delimiter == '"""':
                if line[i] == "\\":
                    i += 2
                    continue
            if line.startswith(delimiter, i):
                return i + len(delimiter)
            i += 1
        return -1 if len(delimiter) == 3 else len(line)
