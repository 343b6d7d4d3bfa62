"""Extraction: run a frozen encoder once over a dataset, into an HDF5 embedding store (`cache.embeddings`).

    path = extract("tiny-clip", manifest, root, workdir=workdir)
    outcome = extract_dataset(ExtractRequest(model="tiny-clip", root=root), workdir, progress)

Flow: the pixel store for the encoder's `pixel_size` (decoded once, shared by every encoder, refreshed where
image files changed) -> the encoder over contiguous row ranges (`extractors.embed`) -> one `.npz` per
finished shard -> the text embeddings of every prompt set -> one HDF5 file renamed into place. The store's
identity includes the pixels' content digest, so a changed image is never served stale. The same call again
is a cache hit, decided by one stat per image file, without building the model (or importing torch), and
writing nothing.

Under `torchrun --nproc-per-node N` rank r embeds shards r, r+N, ...; rank 0 assembles the store after a
barrier. Shards have a fixed size, independent of the batch size and of the number of ranks, so every way
of running writes the same store.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.distributed import Ranks, check_device, environment_rank, process_group
from benchmark.core.errors import BenchError
from benchmark.core.identity import canonical_json, digest
from benchmark.core.manifest import manifest_digest as digest_of_manifest
from benchmark.core.progress import SILENT, Progress
from benchmark.core.schema import RANDOM_INIT
from benchmark.core.versions import package_versions
from benchmark.core.workdir import Workdir
from cache.build import build_sharded
from cache.embeddings import assemble_store, is_complete_store, store_identity
from cache.pixels import DEFAULT_RESIZE, PixelStore, pipeline_settings
from cache.shards import PartsFolder, ShardPlan, save_arrays
from extractors.embed import EXTRACTOR_VERSION, embed_images, embed_prompt_sets, prompt_sets

EMBED_SHARD_ROWS = 2048
SPEC_FIELDS_NOT_IN_IDENTITY = ("description", "licence", "paper", "zeroshot")
"""Spec fields that describe the encoder to people or steer the heads; editing them does not invalidate stores."""


def identity_of(spec, weights_digest: str, manifest_digest: str, sets: dict, pixels_digest: str) -> dict[str, Any]:
    """The identity of the store of encoder `spec` with those weights over that manifest, from pixels with
    that content digest (`cache.pixels.PixelStore.content_digest`)."""
    described = spec.to_json() if hasattr(spec, "to_json") else dataclasses.asdict(spec)
    pixels = {**pipeline_settings(spec.preprocess.pixel_size, store_resize_of(spec)), "content": pixels_digest}
    return store_identity(
        encoder={key: value for key, value in described.items() if key not in SPEC_FIELDS_NOT_IN_IDENTITY},
        weights_digest=weights_digest,
        preprocessing={"pixels": pixels, "encoder": spec.preprocess},
        manifest_digest=manifest_digest,
        extractor_version=EXTRACTOR_VERSION,
        prompts=sets,
    )


def store_resize_of(spec) -> str:
    """The pixel-store resize filter of `spec` (the default for encoder objects whose spec predates filters)."""
    return getattr(spec.preprocess, "store_resize", DEFAULT_RESIZE)


def expected_weights_digest(name: str, weights) -> str | None:
    """The weights digest `load_encoder(name, weights=weights)` will report, found without building the model
    (so that a cache hit costs no model construction); for several checkpoints, their ensemble's digest
    (`cache.ensemble.ensemble_digest`). None when it cannot be known here (the load then reports the problem)."""
    from benchmark.pipelines.ensemble import weights_members
    from cache.ensemble import ensemble_digest

    members = weights_members(weights)
    try:
        digests = [weights_digest_of(name, member) for member in members]
    except BenchError:
        return None
    return digests[0] if len(digests) == 1 else ensemble_digest(digests)


def weights_digest_of(name: str, weights) -> str:
    """The weights digest of one checkpoint (`expected_weights_digest`), or a BenchError saying why it cannot be
    found."""
    from extractors.registry import get_spec
    from extractors.weights import random_init_member, resolve_weights, verify_digest

    spec = get_spec(name)
    seeded = random_init_member(spec, weights)
    if seeded is not None:
        return seeded[1]
    if weights is None and spec.variant == "tiny":
        return RANDOM_INIT
    return verify_digest(resolve_weights(spec, weights))


def cached_store(name: str, manifest, root, *, workdir, weights=None, verify_content: bool = False,
                 classes=None, keep_degenerate: bool = False) -> Path | None:
    """The complete store `extract(name, manifest, root, ...)` would return, if it exists and every image file
    is unchanged since its pixels were decoded; else None. Reads only."""
    from extractors import encoder_spec

    weights_digest = expected_weights_digest(name, weights)
    if weights_digest is None:
        return None
    spec = encoder_spec(name, weights)
    pixels = PixelStore.current(manifest, root, size=spec.preprocess.pixel_size, workdir=workdir,
                                resize=store_resize_of(spec), verify_content=verify_content,
                                keep_degenerate=keep_degenerate)
    if pixels is None:
        return None
    identity = identity_of(spec, weights_digest, digest_of_manifest(manifest), prompt_sets(spec, classes=classes),
                           pixels.content_digest)
    identity_digest = digest(identity)
    path = Workdir.of(workdir).embedding_store(name, identity_digest)
    return path if is_complete_store(path, identity_digest) else None


def extract(
    model,
    manifest,
    root,
    *,
    workdir,
    weights=None,
    trust_checkpoint: bool = False,
    device: str = "cpu",
    batch_size: int = 64,
    workers: int = 0,
    skip_bad: bool = False,
    keep_degenerate: bool = False,
    verify_content: bool = False,
    progress: Progress = SILENT,
    wait: bool = True,
    shard_rows: int = EMBED_SHARD_ROWS,
    classes=None,
) -> Path:
    """Embed every image of `manifest` (files under `root`) with `model` (a registry name, or an `Encoder`);
    return the path of the complete store. See the module docstring. `classes`: the classes whose prompts the
    store embeds (default NIH's label columns; `Adapter.prompt_classes` for other datasets)."""
    if batch_size < 1:
        raise BenchError(f"--batch-size must be at least 1, got {batch_size}")
    if workers < 0:
        raise BenchError(f"--workers must be 0 or more, got {workers}")
    if manifest.height == 0:
        raise BenchError("the manifest has no rows: there is nothing to extract. Check the dataset root and its CSV.")
    workdir = Workdir.of(workdir)
    manifest_digest = digest_of_manifest(manifest)
    with process_group(device) as (ranks, device):
        if isinstance(model, str):
            hit = ranks.share(cached_store(model, manifest, root, workdir=workdir, weights=weights,
                                           verify_content=verify_content, classes=classes,
                                           keep_degenerate=keep_degenerate) if ranks.is_main else None)
            if hit is not None:
                return hit
            from extractors import load_encoder

            encoder = load_encoder(model, weights=weights, trust_checkpoint=trust_checkpoint, device=device)
        else:
            encoder = model.to(device)
        progress = progress if ranks.is_main else SILENT
        started = time.perf_counter()
        pixels = PixelStore.open_or_build(manifest, root, size=encoder.pixel_size, workdir=workdir,
                                          resize=store_resize_of(encoder.spec), workers=workers,
                                          skip_bad=skip_bad, keep_degenerate=keep_degenerate,
                                          verify_content=verify_content, progress=progress, wait=wait, ranks=ranks)
        job = _StoreJob(encoder, pixels, manifest, workdir, manifest_digest, ranks=ranks, progress=progress,
                        wait=wait, shard_rows=shard_rows, classes=classes)
        job.timings.update(pixel_store_s=time.perf_counter() - started, device=device,
                           processes=ranks.world_size)  # what the throughput was measured on
        return job.run(batch_size=batch_size, workers=workers)


class _StoreJob:
    """One store to build: its identity and path, the pixel store it reads, and the build protocol."""

    def __init__(self, encoder, pixels: PixelStore, manifest, workdir: Workdir, manifest_digest: str, *,
                 ranks: Ranks, progress: Progress, wait: bool, shard_rows: int, classes=None):
        self.encoder, self.pixels, self.workdir = encoder, pixels, workdir
        self.manifest_digest, self.ranks, self.progress, self.wait = manifest_digest, ranks, progress, wait
        self.sets = prompt_sets(encoder.spec, encoder, classes)
        self.identity = identity_of(encoder.spec, encoder.weights_digest, manifest_digest, self.sets,
                                    pixels.content_digest)
        self.identity_digest = digest(self.identity)
        self.path = workdir.embedding_store(encoder.spec.name, self.identity_digest)
        self.image_ids = manifest["image_id"].to_list()
        self.plan = ShardPlan(len(self.image_ids), shard_rows)
        # shards from a run with another shard size are discarded, never mixed in
        self.parts = PartsFolder(self.path.with_name(self.path.stem + ".parts"),
                                 canonical_json({"store": self.identity, "shard_rows": shard_rows}))
        self.timings: dict[str, float] = {}

    def run(self, *, batch_size: int, workers: int) -> Path:
        if self.ranks.share(is_complete_store(self.path, self.identity_digest)):
            return self.path
        pixels = self.pixels
        if list(pixels.image_ids) != self.image_ids:
            raise BenchError(f"the pixel store {pixels.path} does not match the manifest rows; delete it and run again")
        build_sharded(
            what=f"the embedding store {self.path}", final=self.path, parts=self.parts, plan=self.plan,
            is_complete=lambda: is_complete_store(self.path, self.identity_digest),
            compute_shards=lambda shards: self.compute(pixels, shards, batch_size=batch_size, workers=workers),
            assemble=lambda: self.assemble(pixels), wait=self.wait, ranks=self.ranks, progress=self.progress,
        )
        pixels.close()
        return self.path

    def compute(self, pixels: PixelStore, shards: list[int], *, batch_size: int, workers: int) -> None:
        started, started_cpu = time.perf_counter(), time.process_time()
        embed_shards(self.encoder, pixels, self.plan, self.parts, shards, batch_size=batch_size, workers=workers,
                     progress=self.progress, stats=self.timings)
        self.timings["embed_images_s"] = time.perf_counter() - started
        self.timings["embed_images_cpu_s"] = time.process_time() - started_cpu
        self.timings["embedded_rows"] = sum(self.plan.bounds(s)[1] - self.plan.bounds(s)[0] for s in shards)

    def assemble(self, pixels: PixelStore) -> None:
        started = time.perf_counter()
        text_sets = embed_prompt_sets(self.encoder, self.sets)
        self.timings["embed_text_s"] = time.perf_counter() - started
        attrs = {
            "identity": canonical_json(self.identity),
            "identity_digest": self.identity_digest,
            "model": self.encoder.spec.name,
            "weights_tag": self.encoder.weights_tag,
            "weights_digest": self.encoder.weights_digest,
            "manifest_digest": self.manifest_digest,
            "extractor_version": EXTRACTOR_VERSION,
            "shard_rows": self.plan.shard_rows,
            "versions": json.dumps(package_versions(), sort_keys=True),
            "timings": json.dumps(self.timings, sort_keys=True),
        }
        attrs["pixels_content_digest"] = pixels.content_digest
        assemble_store(self.path, self.parts, self.plan, image_ids=self.image_ids, excluded=pixels.excluded,
                       bad=pixels.bad, text_sets=text_sets, attrs=attrs, fingerprints=pixels.fingerprints)


def embed_shards(encoder, pixels: PixelStore, plan: ShardPlan, parts: PartsFolder, shards: list[int], *,
                 batch_size: int, workers: int, progress: Progress = SILENT, stats: dict | None = None) -> None:
    """Embed the rows of `shards` and write each finished shard atomically into `parts`."""
    bounds = [(shard, *plan.bounds(shard)) for shard in shards]
    embed_images(encoder, pixels, bounds, batch_size=batch_size, workers=workers, progress=progress, stats=stats,
                 write_shard=lambda shard, arrays: _write_shard(parts, plan, shard, arrays, pixels.excluded))


def _write_shard(parts: PartsFolder, plan: ShardPlan, shard: int, arrays: dict, excluded: np.ndarray) -> None:
    start, stop = plan.bounds(shard)
    if arrays["embedding"].shape[0] != stop - start:
        raise RuntimeError(f"shard {shard}: {arrays['embedding'].shape[0]} rows embedded, expected {stop - start}")
    bad = excluded[start:stop]
    if bad.any():
        for values in arrays.values():
            values[bad] = np.nan
    save_arrays(parts.shard_path(shard), **arrays)


@dataclass(frozen=True)
class ExtractRequest:
    """What `bench extract` asks for: a dataset folder, an encoder and how to run it."""

    model: str
    root: str | Path
    dataset: str = "nih"
    weights: str | tuple[str, ...] | None = None
    """A checkpoint file or folder; several: the members of an ensemble, one store each (`pipelines.ensemble`)."""
    trust_checkpoint: bool = False
    device: str = "cpu"
    batch_size: int = 64
    workers: int = 0
    skip_bad: bool = False
    keep_degenerate: bool = False
    verify_content: bool = False
    wait: bool = True
    val_fraction: float = 0.1
    split_seed: int = 0
    allow_missing_images: bool = False
    uncertain: str | None = None
    views: str | None = None
    labeler: str | None = None
    mimic_iv: str | Path | None = None
    race_map: str | Path | None = None

    def load_options(self):
        """How the dataset adapter reads the folder (options left None keep the adapter's defaults)."""
        from benchmark.datasets.common import LoadOptions

        given = {"uncertain": self.uncertain, "views": self.views, "labeler": self.labeler, "mimic_iv": self.mimic_iv,
                 "race_map": self.race_map}
        return LoadOptions(val_fraction=self.val_fraction, seed=self.split_seed, allow_missing_images=self.allow_missing_images,
                           **{key: value for key, value in given.items() if value is not None})


@dataclass(frozen=True)
class ExtractOutcome:
    store: Path
    cache_hit: bool  # the embedding store existed before this run (its pixels may have been refreshed)
    dataset: Any  # the adapter's dataset (manifest, root, report)
    registered: bool  # the workdir's registered dataset was (re)written by this run
    stores: tuple[Path, ...] = ()  # an ensemble: one store per member, in the order given (else just `store`)
    cache_hits: tuple[bool, ...] = ()


def extract_dataset(request: ExtractRequest, workdir, progress: Progress = SILENT) -> ExtractOutcome:
    """Check the request, read the dataset folder, extract its embedding store, and only then register the
    dataset in the workdir (rank 0; not rewritten when it is registered already). A request that fails leaves
    the registered dataset as it was; a cache hit writes nothing."""
    from benchmark.datasets.adapters import get_adapter, load_dataset
    from extractors.registry import get_spec

    workdir = Workdir.of(workdir)
    check_device(request.device)
    get_spec(request.model)
    if request.batch_size < 1 or request.workers < 0:
        raise BenchError(f"--batch-size must be at least 1 and --workers 0 or more (got {request.batch_size}, "
                         f"{request.workers})")
    adapter = get_adapter(request.dataset)
    dataset = load_dataset(request.dataset, request.root, request.load_options())
    for note in dataset.report.get("notes", []):
        progress.note(f"{request.dataset}: {note}")
    started = time.time()
    from benchmark.pipelines.ensemble import extract_members

    paths = extract_members(request.model, dataset.manifest, dataset.root, workdir=workdir, weights=request.weights,
                            trust_checkpoint=request.trust_checkpoint, device=request.device,
                            batch_size=request.batch_size, workers=request.workers, skip_bad=request.skip_bad,
                            keep_degenerate=request.keep_degenerate, verify_content=request.verify_content,
                            progress=progress, wait=request.wait, classes=adapter.prompt_classes)
    registered = environment_rank() == 0 and _register_if_changed(workdir, request.dataset, dataset)
    hits = tuple(path.stat().st_mtime < started for path in paths)
    return ExtractOutcome(store=paths[0], cache_hit=all(hits), dataset=dataset, registered=registered,
                          stores=tuple(paths), cache_hits=hits)


def _register_if_changed(workdir: Workdir, name: str, dataset) -> bool:
    """Register `dataset` under `name` unless exactly this manifest and root are registered already."""
    from benchmark.datasets.registry import register_dataset, registered_source

    source = registered_source(workdir, name)
    if source and source.get("digest") == digest_of_manifest(dataset.manifest) \
            and source.get("root") == str(Path(dataset.root).resolve()):
        return False
    register_dataset(workdir, name, dataset)
    return True
