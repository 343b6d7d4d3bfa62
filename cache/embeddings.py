"""The HDF5 embedding store: one frozen encoder run once over one dataset, plus its prompt-text embeddings.

One file per identity, `workdir/stores/<model>/<identity[:16]>.h5`, where the identity is the sha256 of the
canonical JSON of {encoder spec, weights digest, preprocessing, manifest digest, extractor version, prompt
sets} (`store_identity`, digested by `benchmark.core.identity`). Readable with plain h5py:

    image/embedding            [N, D]      float16   image embeddings, rows in manifest order (raw, not L2-normed)
    image/local                [N, L, Dl]  float16   GLoRIA only: local (region) features
    rows/image_id              [N]         str       the manifest's image_id, same order
    rows/excluded              [N]         bool      images that could not be decoded (--skip-bad); their
                                                     embedding rows are NaN, never a made-up vector
    rows/size, rows/mtime_ns, rows/sha256            the fingerprint of each image file the pixels came from
                                                     (`cache.fingerprints`; absent in stores of 0.1)
    excluded/row, excluded/path, excluded/reason     which images were excluded and why
    text/<promptset>/embedding [P, D]      float32   one row per prompt
    text/<promptset>/prompts   [P]         str
    text/<promptset>/class_name [P]        str       the manifest label column the prompt describes
    text/<promptset>/polarity  [P]         str       "pos" / "neg" (e.g. CheXzero's "no {}" prompts are "neg")
    text/<promptset>/words     [P, T, Dl]  float32   GLoRIA only: word features
    text/<promptset>/word_mask [P, T]      bool      GLoRIA only: which word slots are real
    attrs: identity (canonical JSON), identity_digest, model, weights_tag, weights_digest, manifest_digest,
           extractor_version, shard_rows, versions (JSON: python, torch, open_clip, ...), timings (JSON: seconds
           per stage of the run that finished the store, on rank 0), created (UTC ISO), complete (True)

A store appears only complete: it is assembled into a temporary file and renamed into place. Until then the
finished rows live in `<identity[:16]>.parts/shard-XXXXX.npz` (see `cache.shards`).

    store = EmbeddingStore.open(find_store(workdir, "tiny-clip", manifest_digest))
    x = store.image_embeddings()           # float16 [N, D]
    prompts = store.text("default")         # dict of arrays
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from benchmark.core.atomic import atomic_output
from benchmark.core.errors import BenchError
from benchmark.core.identity import plain
from benchmark.core.workdir import Workdir
from cache.fingerprints import Fingerprints
from cache.shards import PartsFolder, ShardPlan, load_arrays

STORE_KIND = "cxr-fairbench embedding store"
TEXT_STRING_FIELDS = ("prompts", "class_name", "polarity")
IDENTITY_FIELDS = ("encoder", "weights_digest", "preprocessing", "manifest_digest", "extractor_version", "prompts")


def store_identity(
    *,
    encoder: Any,
    weights_digest: str,
    preprocessing: Any,
    manifest_digest: str,
    extractor_version: str,
    prompts: Any,
) -> dict[str, Any]:
    """The identity record of an embedding store (plain data, see `IDENTITY_FIELDS`); its digest
    (`benchmark.core.identity.digest`) names the store file."""
    return {
        "encoder": plain(encoder),
        "weights_digest": weights_digest,
        "preprocessing": plain(preprocessing),
        "manifest_digest": manifest_digest,
        "extractor_version": extractor_version,
        "prompts": plain(prompts),
    }


def is_complete_store(path: Path, identity_digest: str) -> bool:
    """True when `path` is a finished store with exactly this identity."""
    if not Path(path).exists():
        return False
    try:
        with h5py.File(path, "r") as handle:
            return (
                handle.attrs.get("kind") == STORE_KIND
                and bool(handle.attrs.get("complete", False))
                and handle.attrs.get("identity_digest") == identity_digest
            )
    except OSError:
        return False


class EmbeddingStore:
    """Read-only view of a complete embedding store."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            handle = h5py.File(self.path, "r")
        except (OSError, FileNotFoundError) as error:
            raise BenchError(f"cannot open the embedding store {self.path}: {error}. Run `bench extract` again.") from None
        with handle:
            if handle.attrs.get("kind") != STORE_KIND or not handle.attrs.get("complete", False):
                raise BenchError(f"{self.path} is not a complete embedding store; delete it and run `bench extract` again.")
            self.attrs: dict[str, Any] = {key: _attr(value) for key, value in handle.attrs.items()}
            self.image_ids: np.ndarray = handle["rows/image_id"].asstr()[:]
            self.excluded: np.ndarray = handle["rows/excluded"][:].astype(bool)
            self.promptsets: tuple[str, ...] = tuple(sorted(handle["text"].keys())) if "text" in handle else ()
            self.has_local: bool = "image/local" in handle
            self.embed_dim: int = int(handle["image/embedding"].shape[1])
            self.fingerprints = (Fingerprints(handle["rows/size"][:], handle["rows/mtime_ns"][:], handle["rows/sha256"][:])
                                 if "rows/sha256" in handle else None)
        self.identity: dict[str, Any] = json.loads(self.attrs["identity"])
        self.versions: dict[str, Any] = json.loads(self.attrs.get("versions", "{}"))

    @classmethod
    def open(cls, path: Path) -> EmbeddingStore:
        return cls(path)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r}, model={self.model!r}, rows={len(self)}, dim={self.embed_dim})"

    @property
    def model(self) -> str:
        return self.attrs["model"]

    @property
    def weights_tag(self) -> str:
        return self.attrs["weights_tag"]

    @property
    def identity_digest(self) -> str:
        return self.attrs["identity_digest"]

    @property
    def manifest_digest(self) -> str:
        return self.attrs["manifest_digest"]

    def image_embeddings(self, indices=None) -> np.ndarray:
        """Image embeddings, float16 [N, D] (or the rows at `indices`). Excluded rows are NaN."""
        return self._read("image/embedding", indices)

    def image_local(self, indices=None) -> np.ndarray:
        """GLoRIA local features, float16 [N, L, Dl]; BenchError for families without them."""
        if not self.has_local:
            raise BenchError(f"the store {self.path} ({self.model}) has no local image features; only GLoRIA has them.")
        return self._read("image/local", indices)

    def text(self, promptset: str = "default") -> dict[str, np.ndarray]:
        """One prompt set: `embedding` float32 [P, D], `prompts`, `class_name`, `polarity` (str arrays), and for
        GLoRIA `words` [P, T, Dl], `word_mask` [P, T]."""
        if promptset not in self.promptsets:
            raise BenchError(
                f"the store {self.path} has no prompt set {promptset!r}; it has {list(self.promptsets) or 'none'}."
            )
        with h5py.File(self.path, "r") as handle:
            return read_text_group(handle["text"][promptset])

    def _read(self, name: str, indices) -> np.ndarray:
        with h5py.File(self.path, "r") as handle:
            data = handle[name]
            if indices is None:
                return data[:]
            indices = np.asarray(indices, dtype=np.int64).reshape(-1)
            unique, inverse = np.unique(indices, return_inverse=True)
            return data[unique][inverse] if unique.size else data[:0]


def write_text_group(group, fields: Mapping[str, Any]) -> None:
    """One prompt set's fields into an HDF5 group (strings as variable-length UTF-8)."""
    for field, values in fields.items():
        if field in TEXT_STRING_FIELDS:
            group.create_dataset(field, data=np.asarray(list(values), dtype=object), dtype=h5py.string_dtype())
        else:
            group.create_dataset(field, data=np.asarray(values))


def read_text_group(group) -> dict[str, np.ndarray]:
    """One prompt set's fields from an HDF5 group written by `write_text_group`."""
    return {name: (group[name].asstr()[:] if name in TEXT_STRING_FIELDS else group[name][:]) for name in group}


def _attr(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def find_store(workdir: Path, model: str, manifest_digest: str, *, weights_digest: str | None = None) -> Path:
    """The newest complete store of `model` over the manifest with `manifest_digest` (see `find_stores`)."""
    return find_stores(workdir, model, manifest_digest, weights_digest=weights_digest)[0]


def find_stores(workdir: Path, model: str, manifest_digest: str, *, weights_digest: str | None = None) -> list[Path]:
    """The complete stores of `model` over the manifest with `manifest_digest` (optionally: those weights),
    newest first (e.g. stores of other image contents, or of an older extractor version).

    None is a BenchError, and so are stores that differ in weights when no `weights_digest` says which.
    """
    folder = Workdir.of(workdir).model_stores_dir(model)
    candidates = []
    other_manifests = set()
    for path in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
        try:
            with h5py.File(path, "r") as handle:
                attrs = {key: _attr(value) for key, value in handle.attrs.items()}
        except OSError:
            continue
        if attrs.get("kind") != STORE_KIND or not attrs.get("complete", False):
            continue
        if attrs.get("manifest_digest") != manifest_digest:
            other_manifests.add(str(attrs.get("manifest_digest", ""))[:16])
            continue
        if weights_digest is not None and attrs.get("weights_digest") != weights_digest:
            continue
        candidates.append((attrs.get("created", ""), path, attrs))
    if not candidates:
        raise BenchError(
            f"no embedding store for model {model!r} over this dataset (manifest {manifest_digest[:16]}) in "
            f"{folder}. Run `bench extract --model {model} --dataset nih --root DIR` first."
            + (f" (Its stores there are over other manifests ({', '.join(sorted(other_manifests))}): the "
               "registered dataset changed since, e.g. a later `bench extract` used another --root or options.)"
               if other_manifests else "")
        )
    weights = {attrs.get("weights_digest") for _, _, attrs in candidates}
    if len(weights) > 1:
        listing = "; ".join(f"{path.name}: weights {attrs.get('weights_tag')} ({str(attrs.get('weights_digest'))[:16]})"
                            for _, path, attrs in candidates)
        raise BenchError(
            f"several embedding stores of {model!r} over this dataset were made with different weights ({listing}); "
            "say which weights to use (--weights FILE or --weights-digest DIGEST; several for their ensemble)."
        )
    candidates.sort(key=lambda item: item[0], reverse=True)
    return [path for _, path, _ in candidates]


def assemble_store(
    path: Path,
    parts: PartsFolder,
    plan: ShardPlan,
    *,
    image_ids: list[str],
    excluded: np.ndarray,
    bad: list[dict],
    text_sets: Mapping[str, Mapping[str, Any]],
    attrs: Mapping[str, Any],
    fingerprints=None,
) -> None:
    """Write the complete store from finished shards and the text embeddings, into a temporary file renamed
    into place at the end."""
    first = load_arrays(parts.shard_path(0))
    with atomic_output(path) as temporary:
        with h5py.File(temporary, "w") as handle:
            embedding = handle.create_dataset(
                "image/embedding", shape=(plan.n_rows, first["embedding"].shape[1]), dtype=np.float16,
                chunks=(min(plan.shard_rows, plan.n_rows), first["embedding"].shape[1]),
            )
            local = None
            if "local" in first:
                local = handle.create_dataset(
                    "image/local", shape=(plan.n_rows, *first["local"].shape[1:]), dtype=np.float16,
                )
            for shard in range(plan.n_shards):
                start, stop = plan.bounds(shard)
                arrays = first if shard == 0 else load_arrays(parts.shard_path(shard))
                if arrays["embedding"].shape[0] != stop - start:
                    raise BenchError(
                        f"shard file {parts.shard_path(shard)} holds {arrays['embedding'].shape[0]} rows, expected "
                        f"{stop - start}; delete {parts.path} and run again"
                    )
                embedding[start:stop] = arrays["embedding"]
                if local is not None:
                    local[start:stop] = arrays["local"]
            strings = h5py.string_dtype()
            handle.create_dataset("rows/image_id", data=np.asarray(image_ids, dtype=object), dtype=strings)
            handle.create_dataset("rows/excluded", data=np.asarray(excluded, dtype=bool))
            if fingerprints is not None:
                for name in ("size", "mtime_ns", "sha256"):
                    handle.create_dataset(f"rows/{name}", data=getattr(fingerprints, name))
            handle.create_dataset("excluded/row", data=np.asarray([b["row"] for b in bad], dtype=np.int64))
            handle.create_dataset("excluded/path", data=np.asarray([b["path"] for b in bad], dtype=object), dtype=strings)
            handle.create_dataset("excluded/reason", data=np.asarray([b["reason"] for b in bad], dtype=object), dtype=strings)
            text_group = handle.create_group("text")
            for name, fields in text_sets.items():
                write_text_group(text_group.create_group(name), fields)
            for key, value in attrs.items():
                handle.attrs[key] = value
            handle.attrs["kind"] = STORE_KIND
            handle.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            handle.attrs["complete"] = True
