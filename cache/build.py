"""The one way both stores are built: lock, compute missing shards (per rank), assemble, rename.

    rank 0 takes the store's lock (waiting, or stopping with a message under `wait=False`)
    every rank computes the missing shards assigned to it and writes each atomically
    rank 0 assembles all shards into a temporary HDF5 file, renames it into place, removes the shards

A user error (a `BenchError`, e.g. a bad image) on any rank is raised on every rank, so no rank waits
forever at a barrier.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from benchmark.core.atomic import remove_stale_temporaries
from benchmark.core.distributed import SINGLE, Ranks
from benchmark.core.errors import BenchError, os_error_message
from benchmark.core.progress import SILENT, Progress
from cache.locking import exclusive
from cache.shards import PartsFolder, ShardPlan


def _raise_first(messages: list[str | None]) -> None:
    for message in messages:
        if message:
            raise BenchError(message)


def build_sharded(
    *,
    what: str,
    final: Path,
    parts: PartsFolder,
    plan: ShardPlan,
    is_complete: Callable[[], bool],
    compute_shards: Callable[[list[int]], None],
    assemble: Callable[[], None],
    wait: bool = True,
    ranks: Ranks = SINGLE,
    progress: Progress = SILENT,
) -> None:
    """Build the store at `final` unless it is complete. See the module docstring for the protocol.

    A run that fails with a user error (a bad image, say) removes the shards folder if it made it, so the
    workdir is as it was; shards of an earlier, interrupted run stay for the next one to resume."""
    with contextlib.ExitStack() as stack:
        status, created = None, False
        if ranks.is_main:
            try:
                stack.enter_context(exclusive(final.with_name(final.name + ".lock"), what=what, wait=wait,
                                              progress=progress))
                # under the lock, a temporary of the final file is from a writer that died while assembling it
                remove_stale_temporaries(final.parent, final.name, only_dead_writers=False)
                if is_complete():
                    status = "complete"
                    parts.remove()  # left behind only by a crash between the rename and the clean-up
                else:
                    created = not parts.path.exists()
                    parts.prepare()
            except BenchError as error:
                status = f"error: {error}"
        status = ranks.share(status)
        if status == "complete":
            return
        if status and status.startswith("error: "):
            raise BenchError(status[len("error: "):])
        try:
            _compute_and_assemble(what, parts, plan, compute_shards, assemble, ranks)
        except BenchError:
            if created and ranks.is_main:
                parts.remove()
            raise


def _compute_and_assemble(what, parts: PartsFolder, plan: ShardPlan, compute_shards, assemble, ranks: Ranks) -> None:
    error = None
    try:
        compute_shards(parts.missing(plan.assigned(ranks.rank, ranks.world_size)))
    except BenchError as failure:
        error = str(failure)
    except OSError as failure:  # a full disk on any rank stops every rank, with one message
        error = os_error_message(failure)
        if error is None:
            raise
    _raise_first(ranks.gather(error))

    error = None
    if ranks.is_main:
        try:
            missing = parts.missing(plan.assigned(0, 1))
            if missing:
                raise BenchError(
                    f"{what}: shards {missing[:5]} are missing after every rank finished; run again to compute them"
                )
            assemble()
            parts.remove()
        except BenchError as failure:
            error = str(failure)
        except OSError as failure:
            error = os_error_message(failure)
            if error is None:
                raise
    _raise_first(ranks.gather(error))
