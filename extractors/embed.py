"""Run a frozen encoder over pixel batches and prompt sets: the compute of an extraction, nothing of files.

`embed_images` reads contiguous row ranges from any pixel source with `read_range(start, stop)` (e.g.
`cache.pixels.PixelStore`) through a DataLoader (workers, pinned memory on CUDA), runs `encoder.preprocess`
and `encode_image` under `torch.inference_mode()` (bf16 autocast on CUDA), and hands every finished shard
to a writer callback, on a background thread so that the encoder never waits for the disk.
`embed_prompt_sets` embeds the text prompts. Where the results go is the caller's business
(`benchmark.pipelines.extract` writes them into an embedding store).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmark.core.progress import SILENT, Progress

EXTRACTOR_VERSION = "1"
"""Bump when the stored numbers would change for the same encoder, weights and data."""
TEXT_BATCH = 256

Shard = tuple[int, int, int]
"""(shard number, first row, row after the last)."""


def prompt_sets(spec, encoder=None, classes=None) -> dict[str, list[tuple[str, str, str]]]:
    """Every prompt set of the family of `spec`, as name -> [(class_name, prompt, polarity)]; today one set,
    "default", from the family's prompt file over `classes` (default: NIH's label columns).

    An encoder object outside the registry may bring its own (a `prompt_sets()` method returning the same)."""
    from benchmark.core.schema import LABEL_COLUMNS

    if encoder is not None and hasattr(encoder, "prompt_sets"):
        raw = encoder.prompt_sets()
    else:
        from extractors.prompts import prompt_set

        encodings = promptset_encodings(spec)
        prompts = prompt_set(spec, tuple(classes) if classes else LABEL_COLUMNS) if encodings else []
        raw = {name: prompts for name in encodings}
    sets = {}
    for name, entries in raw.items():
        rows = []
        for entry in entries:
            entry = tuple(entry)
            rows.append((entry[0], entry[1], entry[2] if len(entry) > 2 else "pos"))
        sets[name] = rows
    return sets


def promptset_encodings(spec) -> dict[str, str]:
    """Prompt set name -> how the family encodes it (`spec.extra["promptset_encodings"]`, e.g. MedCLIP's
    "default": the authors' class-batched text embedding, "per-prompt": each prompt alone); one plain set
    "default" for families without the setting, none for vision-only encoders. Every set holds the same
    prompts."""
    extra = getattr(spec, "extra", None) or {}
    zeroshot = getattr(spec, "zeroshot", None)
    if zeroshot is not None and zeroshot.ensemble == "none":
        return {}  # vision only: no text tower, no prompt sets
    return dict(extra.get("promptset_encodings", {"default": "plain"}))


class _RowRanges:
    """Map-style dataset: item i is (shard, start, stop, uint8 pixels of rows start:stop)."""

    def __init__(self, pixels, ranges: list[tuple[int, int, int]]):
        self.pixels = pixels
        self.ranges = ranges

    def __len__(self) -> int:
        return len(self.ranges)

    def __getitem__(self, index: int):
        import torch

        shard, start, stop = self.ranges[index]
        return shard, start, stop, torch.from_numpy(self.pixels.read_range(start, stop))


def batch_ranges(shards: list[Shard], batch_size: int) -> list[tuple[int, int, int]]:
    """(shard, start, stop) batches that never cross a shard boundary."""
    ranges = []
    for shard, start, stop in shards:
        for first in range(start, stop, batch_size):
            ranges.append((shard, first, min(first + batch_size, stop)))
    return ranges


def embed_images(encoder, pixels, shards: list[Shard], *, batch_size: int, workers: int,
                 write_shard: Callable[[int, dict[str, np.ndarray]], None], progress: Progress = SILENT,
                 stats: dict | None = None) -> None:
    """Embed the rows of `shards` and call `write_shard(shard, {"embedding": float16 [rows, D], ["local": ...]})`
    for each finished shard (one write in flight at a time, on a background thread).

    `stats["loader_wait_s"]` gets the time spent waiting for pixel batches (near zero when the encoder, not the
    data, bounds the run) and `stats["encode_calls_s"]` the time inside preprocess + encode_image calls (the
    compute itself on the CPU; only the launch on CUDA, where kernels run asynchronously)."""
    import torch
    from torch.utils.data import DataLoader

    stats = {} if stats is None else stats
    if not shards:
        return
    device = torch.device(encoder.device)
    on_cuda = device.type == "cuda"
    if hasattr(pixels, "close"):
        pixels.close()  # each DataLoader worker opens its own handle
    loader = DataLoader(_RowRanges(pixels, batch_ranges(shards, batch_size)), batch_size=None, shuffle=False,
                        num_workers=workers, pin_memory=on_cuda, prefetch_factor=4 if workers else None)
    stops = {shard: stop for shard, _, stop in shards}
    starts = {shard: start for shard, start, _ in shards}
    total = sum(stop - start for _, start, stop in shards)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
    pending: dict[str, list] = {"embedding": [], "local": []}
    with progress.bar(f"embedding ({encoder.spec.name})", total=total) as bar, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer:
        in_flight = None
        with torch.inference_mode(), autocast:
            for shard, stop, outputs in _encoded_batches(encoder, loader, device, stats):
                pending["embedding"].append(outputs["embedding"].to(torch.float16))
                if "local" in outputs:
                    pending["local"].append(outputs["local"].to(torch.float16).cpu())
                if stop == stops[shard]:
                    finished = {name: torch.cat(values) for name, values in pending.items() if values}
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = writer.submit(_to_numpy_and_write, write_shard, shard, finished)
                    bar.advance(stop - starts[shard])
                    pending = {"embedding": [], "local": []}
        if in_flight is not None:
            in_flight.result()


def _encoded_batches(encoder, loader, device, stats: dict):
    """(shard, stop, outputs) for each batch of the loader, timing the waits and the encoder calls."""
    batches = iter(loader)
    while True:
        asked = time.perf_counter()
        item = next(batches, None)
        stats["loader_wait_s"] = stats.get("loader_wait_s", 0.0) + time.perf_counter() - asked
        if item is None:
            return
        shard, _, stop, batch = item
        asked = time.perf_counter()
        outputs = encoder.encode_image(encoder.preprocess(batch.to(device, non_blocking=True)))
        stats["encode_calls_s"] = stats.get("encode_calls_s", 0.0) + time.perf_counter() - asked
        yield shard, stop, outputs


def _to_numpy_and_write(write_shard, shard: int, finished: dict) -> None:
    write_shard(shard, {name: tensor.cpu().numpy() for name, tensor in finished.items()})


def embed_prompt_sets(encoder, sets: dict[str, list[tuple[str, str, str]]]) -> dict[str, dict[str, Any]]:
    """Text embeddings (float32) of every prompt set, with their prompts, classes and polarities."""
    import torch

    result = {}
    encodings = promptset_encodings(encoder.spec)
    with torch.inference_mode():
        for name, entries in sets.items():
            prompts = [prompt for _, prompt, _ in entries]
            if encodings.get(name, "plain") != "plain":
                classes = [class_name for class_name, _, _ in entries]
                outputs = encoder.encode_prompt_set(encodings[name], prompts, classes)
                chunks = {key: [value.float().cpu() if value.is_floating_point() else value.cpu()]
                          for key, value in outputs.items()}
            else:
                chunks = _encode_in_batches(encoder, prompts)
            fields: dict[str, Any] = {key: torch.cat(values).numpy() for key, values in chunks.items()}
            if "word_mask" in fields:
                fields["word_mask"] = fields["word_mask"].astype(bool)
            fields["prompts"] = prompts
            fields["class_name"] = [class_name for class_name, _, _ in entries]
            fields["polarity"] = [polarity for _, _, polarity in entries]
            result[name] = fields
    return result


def _encode_in_batches(encoder, prompts: list[str]) -> dict[str, list]:
    chunks: dict[str, list] = {}
    for first in range(0, len(prompts), TEXT_BATCH):
        for key, value in encoder.encode_text(prompts[first : first + TEXT_BATCH]).items():
            chunks.setdefault(key, []).append(value.float().cpu() if value.is_floating_point() else value.cpu())
    return chunks
