"""User-facing errors, and the one-line message of the file-system failures a user can fix.

A `BenchError` is a mistake the user can fix (bad input, missing weights, unknown name). The CLI prints its
message without a traceback (unless `--verbose`). Every message says what went wrong, with which value, and
what to do next.
"""

import errno


class BenchError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error_message(error: OSError) -> str | None:
    """One line for a disk that is full or a place that is read-only; None for other OS errors."""
    where = error.filename or "a file"
    text = str(error)
    if error.errno in NO_SPACE or "No space left on device" in text or "File too large" in text:
        return (f"cannot write {where}: no space left (or the file size limit was reached). The partial file was "
                "removed and nothing else was changed; free some space (or use another --workdir) and run again.")
    if error.errno in NOT_WRITABLE:
        return (f"cannot write {where}: it is read-only ({error.strerror}). Choose a writable working directory "
                "with --workdir DIR or BENCH_HOME; commands that only read (a cache hit, the leaderboard) work as "
                "they are.")
    return None
