"""Where the tool writes: pixel caches, embedding stores, runs.

Resolution order: the `--workdir` option, then the `BENCH_HOME` environment variable, then
`~/.cache/cxr-fairbench`. Layout under it:

    datasets/<dataset>/manifest.parquet   the canonical manifest last registered for that dataset name
    datasets/<dataset>/source.json        the root folder it was read from and its digest
    pixels/<manifest-digest>-<size>px.h5  decoded uint8 pixel stores
    stores/<model>/<identity>.h5          embedding stores (one per identity)
    runs/<task>/<run-id>/predictions.parquet
    finetune/<run-id>/                    fine-tuning checkpoints
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "BENCH_HOME"
DEFAULT = Path("~/.cache/cxr-fairbench")


def resolve_workdir(option: str | os.PathLike | None = None) -> Path:
    """Return the working directory (created if needed) from the option, `BENCH_HOME`, or the default."""
    if option:
        path = Path(option)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    else:
        path = DEFAULT
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
