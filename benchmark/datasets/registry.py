"""Datasets registered in the working directory, so later commands find the manifest by name.

`workdir/datasets/<name>/manifest.parquet` (the canonical manifest) and `source.json` (the root it was read
from, its digest, rows, label columns, and the adapter's report), both written atomically
(`benchmark.core.atomic`), so an interrupted write never leaves a half-written manifest. A manifest registered
by an earlier version (without `race`, `insurance` or the CheXpert-only label columns) is upgraded on read; its
digest, and so its stores, stay valid.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from benchmark.core.atomic import atomic_output, write_text
from benchmark.core.errors import BenchError
from benchmark.core.manifest import labelled_columns, manifest_digest, upgrade_manifest, validate_manifest
from benchmark.core.workdir import Workdir


def register_dataset(workdir: Workdir | str | os.PathLike, name: str, dataset) -> Path:
    """Write `dataset.manifest` (validated) and its source record under `workdir/datasets/<name>/`; return the
    folder. `dataset` is anything with `.manifest`, `.root` and optionally `.report` (e.g. `NihDataset`)."""
    workdir = Workdir.of(workdir)
    manifest = validate_manifest(dataset.manifest, source=f"dataset {name!r}")
    source = {
        "name": name,
        "root": str(Path(dataset.root).resolve()),
        "digest": manifest_digest(manifest),
        "rows": manifest.height,
        "labels": list(labelled_columns(manifest)),
        "report": getattr(dataset, "report", {}),
    }
    with atomic_output(workdir.manifest_path(name)) as temporary:
        manifest.write_parquet(temporary)
    write_text(workdir.source_path(name), json.dumps(source, indent=2, default=str))
    return workdir.dataset_dir(name)


def registered_source(workdir: Workdir | str | os.PathLike, name: str) -> dict | None:
    """The source record of the dataset registered under `name` (root, digest, rows, report), or None."""
    path = Workdir.of(workdir).source_path(name)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_registered(workdir: Workdir | str | os.PathLike, name: str) -> tuple[pl.DataFrame, Path]:
    """The manifest registered under `name` and the dataset root it was read from."""
    workdir = Workdir.of(workdir)
    manifest_path, source_path = workdir.manifest_path(name), workdir.source_path(name)
    if not manifest_path.is_file() or not source_path.is_file():
        known = sorted(path.name for path in workdir.datasets_dir.glob("*") if (path / "manifest.parquet").is_file())
        raise BenchError(
            f"no dataset {name!r} is registered in {workdir} (known: {', '.join(known) or 'none'}). "
            f"Run `bench extract --dataset {name} --root DIR ...` (or `bench data check --dataset {name} --root DIR --register {name}`: a check registers only with --register) first."
        )
    try:
        source = json.loads(source_path.read_text())
        manifest = pl.read_parquet(manifest_path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as error:
        raise BenchError(f"{manifest_path.parent}: the registered dataset cannot be read ({error}). Register it again with --root DIR.") from None
    manifest, _ = upgrade_manifest(manifest)
    validate_manifest(manifest, source=str(manifest_path))
    if manifest_digest(manifest) != source.get("digest"):
        raise BenchError(f"{manifest_path}: its content does not match the digest in {source_path.name}; it was changed by hand. Register it again with --root DIR.")
    return manifest, Path(source["root"])
