"""User-facing errors.

A `BenchError` is a mistake the user can fix (bad input, missing weights, unknown name). The CLI prints its
message without a traceback (unless `--verbose`). Every message says what went wrong, with which value, and
what to do next.
"""


class BenchError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""
