"""Datasets registered in the working directory, so later commands find the manifest by name.

Layout: `workdir/datasets/<name>/manifest.parquet` (the canonical manifest) and `source.json` (the root it was
read from, its digest, rows, and the adapter's report). Both are written to a temporary file and renamed, so an
interrupted write never leaves a half-written manifest.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import polars as pl

from benchmark.datasets.manifest import manifest_digest, validate_manifest
from benchmark.errors import BenchError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def dataset_dir(workdir: str | os.PathLike, name: str) -> Path:
    """`workdir/datasets/<name>`; the name must be a plain identifier (letters, digits, `_ . -`)."""
    if not NAME_PATTERN.match(name or ""):
        raise BenchError(f"dataset name {name!r} must start with a letter or digit and use only letters, digits, '_', '.', '-'.")
    return Path(workdir) / "datasets" / name


def register_dataset(workdir: str | os.PathLike, name: str, dataset) -> Path:
    """Write `dataset.manifest` (validated) and its source record under `workdir/datasets/<name>/`; return the
    folder. `dataset` is anything with `.manifest`, `.root` and optionally `.report` (e.g. `NihDataset`)."""
    folder = dataset_dir(workdir, name)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = validate_manifest(dataset.manifest, source=f"dataset {name!r}")
    digest = manifest_digest(manifest)
    source = {
        "name": name,
        "root": str(Path(dataset.root).resolve()),
        "digest": digest,
        "rows": manifest.height,
        "report": getattr(dataset, "report", {}),
    }
    _write_atomically(folder / "manifest.parquet", lambda path: manifest.write_parquet(path))
    _write_atomically(folder / "source.json", lambda path: Path(path).write_text(json.dumps(source, indent=2, default=str)))
    return folder


def load_registered(workdir: str | os.PathLike, name: str) -> tuple[pl.DataFrame, Path]:
    """The manifest registered under `name` and the dataset root it was read from."""
    folder = dataset_dir(workdir, name)
    manifest_path, source_path = folder / "manifest.parquet", folder / "source.json"
    if not manifest_path.is_file() or not source_path.is_file():
        known = sorted(path.name for path in (Path(workdir) / "datasets").glob("*") if (path / "manifest.parquet").is_file())
        raise BenchError(
            f"no dataset {name!r} is registered in {Path(workdir)} (known: {', '.join(known) or 'none'}). "
            f"Run `bench extract --dataset {name} --root DIR ...` (or `bench data check --dataset {name} --root DIR`) first."
        )
    try:
        source = json.loads(source_path.read_text())
        manifest = pl.read_parquet(manifest_path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as error:
        raise BenchError(f"{folder}: the registered dataset cannot be read ({error}). Register it again with --root DIR.") from error
    validate_manifest(manifest, source=str(manifest_path))
    if manifest_digest(manifest) != source.get("digest"):
        raise BenchError(f"{manifest_path}: its content does not match the digest in {source_path.name}; it was changed by hand. Register it again with --root DIR.")
    return manifest, Path(source["root"])


def _write_atomically(path: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
