"""The working directory: where the tool writes, and the one place its folder layout is spelt out.

Resolution order: the `--workdir` option, then the `BENCH_HOME` environment variable, then
`~/.cache/cxr-fairbench`. Layout:

    datasets/<dataset>/manifest.parquet      the canonical manifest last registered for that dataset name
    datasets/<dataset>/source.json           the root folder it was read from, its digest, the adapter's report
    pixels/<manifest-digest[:16]>-<size>px[-<filter>].h5   decoded uint8 pixel stores
    stores/<model>/<identity[:16]>.h5        embedding stores (one per identity)
    stores/<model>/text/<identity[:16]>.h5   extra prompt sets' text embeddings (`cache.text_sets`)
    runs/<task>/<run-id>/predictions.parquet one prediction file per run
    probes/<model>/<store[:16]>-<attribute>-seed<seed>.json  demographic-encoding probes (`bench probe`)
    finetune/<run-id>/                       fine-tuning checkpoints
    experiments/<name>/                      one `bench run` experiment: its plan, job states, logs, leaderboards
    demo/                                    the demo's synthetic dataset
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from benchmark.core.errors import BenchError

ENV_VAR = "BENCH_HOME"
DEFAULT = Path("~/.cache/cxr-fairbench")
PREDICTIONS_FILE = "predictions.parquet"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
"""Names that become folder names (datasets, tasks, encoders, methods, run ids): no separators, no `..`."""


def check_name(kind: str, value: str) -> str:
    """`value` unchanged when it is safe as one folder name; BenchError naming the `kind` otherwise."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise BenchError(
            f"{kind} name {value!r} cannot be used as a folder name; start with a letter or digit and use only "
            "letters, digits, '.', '_', '+', '-'"
        )
    return value


class Workdir:
    """The working directory `root` and the paths of everything in it (nothing is created by asking)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def resolve(cls, option: str | os.PathLike | None = None) -> "Workdir":
        """The working directory (created if needed) from the option, `BENCH_HOME`, or the default."""
        if option:
            path = Path(option)
        elif os.environ.get(ENV_VAR):
            path = Path(os.environ[ENV_VAR])
        else:
            path = DEFAULT
        workdir = cls(path)
        if workdir.root.exists() and not workdir.root.is_dir():
            raise BenchError(f"the working directory {workdir.root} is a file; give a folder with --workdir DIR "
                             f"(or {ENV_VAR})")
        if not workdir.root.exists():
            workdir.root.mkdir(parents=True)
        return workdir

    @classmethod
    def of(cls, value: "Workdir | str | os.PathLike") -> "Workdir":
        """`value` as a Workdir (library functions accept a Workdir or a path)."""
        return value if isinstance(value, Workdir) else cls(value)

    def __fspath__(self) -> str:
        return str(self.root)

    def __truediv__(self, other) -> Path:
        return self.root / other

    def __str__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"Workdir({str(self.root)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Workdir) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # datasets -----------------------------------------------------------------------------------------
    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def dataset_dir(self, name: str) -> Path:
        return self.datasets_dir / check_name("dataset", name)

    def manifest_path(self, name: str) -> Path:
        return self.dataset_dir(name) / "manifest.parquet"

    def source_path(self, name: str) -> Path:
        return self.dataset_dir(name) / "source.json"

    # caches -------------------------------------------------------------------------------------------
    @property
    def pixels_dir(self) -> Path:
        return self.root / "pixels"

    def pixel_store(self, manifest_digest: str, size: int, resize: str = "pil-bicubic") -> Path:
        """The pixel store file; its resize filter is in the name (none for the default, pil-bicubic)."""
        suffix = "" if resize == "pil-bicubic" else f"-{check_name('resize filter', resize)}"
        return self.pixels_dir / f"{manifest_digest[:16]}-{int(size)}px{suffix}.h5"

    @property
    def stores_dir(self) -> Path:
        return self.root / "stores"

    def model_stores_dir(self, model: str) -> Path:
        return self.stores_dir / check_name("encoder", model)

    def embedding_store(self, model: str, identity_digest: str) -> Path:
        return self.model_stores_dir(model) / f"{identity_digest[:16]}.h5"

    def text_set_path(self, model: str, identity_digest: str) -> Path:
        """Prompt-text embeddings of a prompt set outside the stores (`cache.text_sets`)."""
        return self.model_stores_dir(model) / "text" / f"{identity_digest[:16]}.h5"

    # runs ---------------------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def task_runs_dir(self, task: str) -> Path:
        return self.runs_dir / check_name("task", task)

    def predictions_path(self, task: str, run_id: str) -> Path:
        return self.task_runs_dir(task) / check_name("run", run_id) / PREDICTIONS_FILE

    @property
    def probes_dir(self) -> Path:
        return self.root / "probes"

    def probe_path(self, model: str, store_identity: str, attribute: str, seed: int) -> Path:
        """The result of probing `attribute` (e.g. "sex", "sex_age") in `model`'s store with that identity."""
        name = f"{store_identity[:16]}-{check_name('attribute', attribute)}-seed{int(seed)}.json"
        return self.probes_dir / check_name("encoder", model) / name

    @property
    def finetune_dir(self) -> Path:
        return self.root / "finetune"

    def finetune_run_dir(self, run_id: str) -> Path:
        return self.finetune_dir / check_name("fine-tuning run", run_id)

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    def experiment_dir(self, name: str) -> Path:
        return self.experiments_dir / check_name("experiment", name)

    def experiment_runs_path(self, name: str, task: str) -> Path:
        """The runs of `task` that experiment `name`'s plan made or reused (JSON, written by its leaderboard job)."""
        return self.experiment_dir(name) / "runs" / f"{check_name('task', task)}.json"

    @property
    def demo_dir(self) -> Path:
        return self.root / "demo"
