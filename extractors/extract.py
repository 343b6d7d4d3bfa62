"""Run a frozen encoder once over a dataset, into an HDF5 embedding store (see `cache.embeddings`).

    path = extract("tiny-clip", manifest, root, workdir=workdir)

Flow: the pixel store for the encoder's `pixel_size` (decoded once, shared by every encoder) -> a DataLoader
of contiguous row ranges (workers, pinned memory on CUDA) -> `encoder.preprocess` + `encode_image` under
`torch.inference_mode()` (bf16 autocast on CUDA) -> one `.npz` per finished shard -> the text embeddings of
every prompt set -> one HDF5 file renamed into place. The same call again is a cache hit.

Under `torchrun --nproc-per-node N` (the `torch.distributed` environment variables are set) rank r embeds
shards r, r+N, ...; rank 0 assembles the store after a barrier. Shards have a fixed size, independent of the
batch size and of the number of ranks, so every way of running writes the same store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import BenchError
from cache.atomic import save_arrays
from cache.build import build_sharded
from cache.embeddings import assemble_store, is_complete_store, store_path
from cache.identity import canonical_json, digest, store_identity
from cache.pixels import PixelStore, pipeline_settings
from cache.ranks import SingleProcess, TorchRanks
from cache.shards import PartsFolder, ShardPlan

EXTRACTOR_VERSION = "1"
"""Bump when the stored numbers would change for the same encoder, weights and data."""
EMBED_SHARD_ROWS = 2048
TEXT_BATCH = 256


def check_device(device: str) -> str:
    """'cpu', 'cuda' or 'cuda:N'; BenchError when CUDA is asked for but absent."""
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BenchError(
                f"--device {device} was asked for, but this machine has no usable CUDA GPU "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). Use --device cpu."
            )
        return device
    raise BenchError(f"unknown device {device!r}; use 'cpu' or 'cuda' (or 'cuda:N').")


@contextlib.contextmanager
def distributed_ranks(device: str):
    """Yield (ranks, device): `TorchRanks` under torchrun (initialising the process group if needed, gloo on
    CPU, NCCL on CUDA plus a gloo group for coordination), else `SingleProcess`."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "RANK" not in os.environ:
        yield SingleProcess(), device
        return
    import torch
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if device.startswith("cuda"):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if owned:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", timeout=timedelta(hours=4))
    group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo", timeout=timedelta(hours=4))
    try:
        yield TorchRanks(group), device
        dist.barrier(group=group)  # no rank tears the group down while a peer still talks to it
    finally:
        if owned:
            dist.destroy_process_group()


def prompt_sets(spec, encoder=None) -> dict[str, list[tuple[str, str, str]]]:
    """Every prompt set of the family of `spec`, as name -> [(class_name, prompt, polarity)]; today one set,
    "default", from the family's prompt file over every label column.

    An encoder object outside the registry may bring its own (a `prompt_sets()` method returning the same)."""
    from benchmark.datasets.labels import LABEL_COLUMNS

    if encoder is not None and hasattr(encoder, "prompt_sets"):
        raw = encoder.prompt_sets()
    else:
        from extractors.prompts import prompt_set

        raw = {"default": prompt_set(spec, LABEL_COLUMNS)}
    sets = {}
    for name, entries in raw.items():
        rows = []
        for entry in entries:
            entry = tuple(entry)
            rows.append((entry[0], entry[1], entry[2] if len(entry) > 2 else "pos"))
        sets[name] = rows
    return sets


SPEC_FIELDS_NOT_IN_IDENTITY = ("description", "licence", "paper")
"""Spec fields that only describe the encoder to people; editing them does not invalidate stores."""


def identity_of(spec, weights_digest: str, manifest_digest: str, sets: dict) -> dict[str, Any]:
    """The identity of the store of encoder `spec` with those weights over that manifest."""
    described = spec.to_json() if hasattr(spec, "to_json") else dataclasses.asdict(spec)
    return store_identity(
        encoder={key: value for key, value in described.items() if key not in SPEC_FIELDS_NOT_IN_IDENTITY},
        weights_digest=weights_digest,
        preprocessing={"pixels": pipeline_settings(spec.preprocess.pixel_size), "encoder": spec.preprocess},
        manifest_digest=manifest_digest,
        extractor_version=EXTRACTOR_VERSION,
        prompts=sets,
    )


def expected_weights_digest(name: str, weights) -> str | None:
    """The weights digest `load_encoder(name, weights=weights)` will report, found without building the model
    (so that a cache hit costs no model construction); None when it cannot be known here (the load then
    reports the problem)."""
    from extractors.registry import RANDOM_INIT, get_spec

    spec = get_spec(name)
    if weights is None and spec.variant == "tiny":
        return RANDOM_INIT
    from extractors.weights import resolve_weights, verify_digest

    try:
        return verify_digest(resolve_weights(spec, weights))
    except BenchError:
        return None


def cached_store(name: str, manifest_digest: str, *, workdir: Path, weights=None) -> Path | None:
    """The complete store `extract(name, ...)` would return, if it already exists; else None."""
    from extractors.registry import get_spec

    weights_digest = expected_weights_digest(name, weights)
    if weights_digest is None:
        return None
    spec = get_spec(name)
    identity_digest = digest(identity_of(spec, weights_digest, manifest_digest, prompt_sets(spec)))
    path = store_path(workdir, name, identity_digest)
    return path if is_complete_store(path, identity_digest) else None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("cxr-fairbench", "torch", "open_clip_torch", "transformers", "timm", "h5py", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found


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
    progress: bool = True,
    wait: bool = True,
    shard_rows: int = EMBED_SHARD_ROWS,
) -> Path:
    """Embed every image of `manifest` (files under `root`) with `model` (a registry name, or an `Encoder`);
    return the path of the complete store. See the module docstring."""
    from benchmark.datasets.manifest import manifest_digest as digest_of_manifest

    if batch_size < 1:
        raise BenchError(f"--batch-size must be at least 1, got {batch_size}")
    if workers < 0:
        raise BenchError(f"--workers must be 0 or more, got {workers}")
    if manifest.height == 0:
        raise BenchError("the manifest has no rows: there is nothing to extract. Check the dataset root and its CSV.")
    device = check_device(device)
    workdir = Path(workdir)
    manifest_digest = digest_of_manifest(manifest)
    with distributed_ranks(device) as (ranks, device):
        if isinstance(model, str):
            from extractors import load_encoder

            hit = ranks.share(cached_store(model, manifest_digest, workdir=workdir, weights=weights))
            if hit is not None:
                return hit
            encoder = load_encoder(model, weights=weights, trust_checkpoint=trust_checkpoint, device=device)
        else:
            encoder = model.to(device)
        name = encoder.spec.name
        sets = prompt_sets(encoder.spec, encoder)
        identity = identity_of(encoder.spec, encoder.weights_digest, manifest_digest, sets)
        identity_digest = digest(identity)
        path = store_path(workdir, name, identity_digest)
        if ranks.share(is_complete_store(path, identity_digest)):
            return path

        show = progress and ranks.rank == 0
        timings: dict[str, float] = {}
        started = time.perf_counter()
        pixels = PixelStore.open_or_build(
            manifest, root, size=encoder.pixel_size, workdir=workdir, workers=workers, skip_bad=skip_bad,
            progress=show, wait=wait, ranks=ranks,
        )
        timings["pixel_store_s"] = time.perf_counter() - started
        image_ids = manifest["image_id"].to_list()
        if list(pixels.image_ids) != image_ids:
            raise BenchError(f"the pixel store {pixels.path} does not match the manifest rows; delete it and run again")
        plan = ShardPlan(len(image_ids), shard_rows)
        identity_json = canonical_json(identity)
        # shards from a run with another shard size are discarded, never mixed in
        parts = PartsFolder(path.with_name(path.stem + ".parts"), canonical_json({"store": identity, "shard_rows": shard_rows}))

        def compute(shards: list[int]) -> None:
            started, started_cpu = time.perf_counter(), time.process_time()
            embed_shards(encoder, pixels, plan, parts, shards, batch_size=batch_size, workers=workers, progress=show,
                         stats=timings)
            timings["embed_images_s"] = time.perf_counter() - started
            timings["embed_images_cpu_s"] = time.process_time() - started_cpu
            timings["embedded_rows"] = sum(plan.bounds(s)[1] - plan.bounds(s)[0] for s in shards)

        def assemble() -> None:
            started = time.perf_counter()
            text_sets = embed_prompt_sets(encoder, sets)
            timings["embed_text_s"] = time.perf_counter() - started
            assemble_store(
                path, parts, plan, image_ids=image_ids, excluded=pixels.excluded, bad=pixels.bad,
                text_sets=text_sets,
                attrs={
                    "identity": identity_json,
                    "identity_digest": identity_digest,
                    "model": name,
                    "weights_tag": encoder.weights_tag,
                    "weights_digest": encoder.weights_digest,
                    "manifest_digest": manifest_digest,
                    "extractor_version": EXTRACTOR_VERSION,
                    "shard_rows": shard_rows,
                    "versions": json.dumps(versions(), sort_keys=True),
                    "timings": json.dumps(timings, sort_keys=True),
                },
            )

        build_sharded(
            what=f"the embedding store {path}",
            final=path,
            parts=parts,
            plan=plan,
            is_complete=lambda: is_complete_store(path, identity_digest),
            compute_shards=compute,
            assemble=assemble,
            wait=wait,
            ranks=ranks,
        )
        pixels.close()
        return path


class _RowRanges:
    """Map-style dataset: item i is (shard, start, stop, uint8 pixels of rows start:stop)."""

    def __init__(self, pixels: PixelStore, ranges: list[tuple[int, int, int]]):
        self.pixels = pixels
        self.ranges = ranges

    def __len__(self) -> int:
        return len(self.ranges)

    def __getitem__(self, index: int):
        import torch

        shard, start, stop = self.ranges[index]
        return shard, start, stop, torch.from_numpy(self.pixels.read_range(start, stop))


def batch_ranges(plan: ShardPlan, shards: list[int], batch_size: int) -> list[tuple[int, int, int]]:
    """(shard, start, stop) batches that never cross a shard boundary."""
    ranges = []
    for shard in shards:
        start, stop = plan.bounds(shard)
        for first in range(start, stop, batch_size):
            ranges.append((shard, first, min(first + batch_size, stop)))
    return ranges


def embed_shards(encoder, pixels: PixelStore, plan: ShardPlan, parts: PartsFolder, shards: list[int], *,
                 batch_size: int, workers: int, progress: bool, stats: dict | None = None) -> None:
    """Embed the rows of `shards` and write each finished shard atomically. `stats["loader_wait_s"]` gets the
    time spent waiting for pixel batches (near zero when the encoder, not the data, bounds the run) and
    `stats["encode_calls_s"]` the time inside preprocess + encode_image calls (the compute itself on the CPU;
    only the launch on CUDA, where kernels run asynchronously)."""
    import torch
    from torch.utils.data import DataLoader

    from benchmark.console import console
    from cache.progress import rows_progress

    stats = {} if stats is None else stats
    if not shards:
        return
    device = torch.device(encoder.device)
    on_cuda = device.type == "cuda"
    pixels.close()  # each DataLoader worker opens its own handle
    loader = DataLoader(
        _RowRanges(pixels, batch_ranges(plan, shards, batch_size)),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=on_cuda,
        prefetch_factor=4 if workers else None,
    )
    total = sum(plan.bounds(shard)[1] - plan.bounds(shard)[0] for shard in shards)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
    pending: dict[str, list] = {"embedding": [], "local": []}
    # Finished shards are copied back and written (with fsync) by one background thread, so the encoder never
    # waits for the disk; at most one write is in flight.
    with rows_progress(f"embedding ({encoder.spec.name})", total=total, enabled=progress, console=console) as advance, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer:
        in_flight = None
        with torch.inference_mode(), autocast:
            batches = iter(loader)
            while True:
                asked = time.perf_counter()
                item = next(batches, None)
                stats["loader_wait_s"] = stats.get("loader_wait_s", 0.0) + time.perf_counter() - asked
                if item is None:
                    break
                shard, start, stop, batch = item
                asked = time.perf_counter()
                outputs = encoder.encode_image(encoder.preprocess(batch.to(device, non_blocking=True)))
                stats["encode_calls_s"] = stats.get("encode_calls_s", 0.0) + time.perf_counter() - asked
                pending["embedding"].append(outputs["embedding"].to(torch.float16))
                if "local" in outputs:
                    pending["local"].append(outputs["local"].to(torch.float16).cpu())
                if stop == plan.bounds(shard)[1]:
                    finished = {name: torch.cat(values) for name, values in pending.items() if values}
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = writer.submit(_write_shard, parts, plan, shard, finished, pixels.excluded)
                    advance(stop - plan.bounds(shard)[0])
                    pending = {"embedding": [], "local": []}
        if in_flight is not None:
            in_flight.result()


def _write_shard(parts: PartsFolder, plan: ShardPlan, shard: int, finished: dict, excluded: np.ndarray) -> None:
    start, stop = plan.bounds(shard)
    arrays = {name: tensor.cpu().numpy() for name, tensor in finished.items()}
    if arrays["embedding"].shape[0] != stop - start:
        raise RuntimeError(f"shard {shard}: {arrays['embedding'].shape[0]} rows embedded, expected {stop - start}")
    bad = excluded[start:stop]
    if bad.any():
        for values in arrays.values():
            values[bad] = np.nan
    save_arrays(parts.shard_path(shard), **arrays)


def embed_prompt_sets(encoder, sets: dict[str, list[tuple[str, str, str]]]) -> dict[str, dict[str, Any]]:
    """Text embeddings (float32) of every prompt set, with their prompts, classes and polarities."""
    import torch

    result = {}
    with torch.inference_mode():
        for name, entries in sets.items():
            prompts = [prompt for _, prompt, _ in entries]
            chunks: dict[str, list] = {}
            for first in range(0, len(prompts), TEXT_BATCH):
                for key, value in encoder.encode_text(prompts[first : first + TEXT_BATCH]).items():
                    chunks.setdefault(key, []).append(value.float().cpu() if value.is_floating_point() else value.cpu())
            fields: dict[str, Any] = {key: torch.cat(values).numpy() for key, values in chunks.items()}
            if "word_mask" in fields:
                fields["word_mask"] = fields["word_mask"].astype(bool)
            fields["prompts"] = prompts
            fields["class_name"] = [class_name for class_name, _, _ in entries]
            fields["polarity"] = [polarity for _, _, polarity in entries]
            result[name] = fields
    return result
