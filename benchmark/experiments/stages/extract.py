"""extract/<encoder>/<dataset>: the frozen encoder over the registered dataset, once, into its embedding store
(`benchmark.pipelines.extract.extract`). Done when the store of the same identity is complete (`cached_store`)."""

from __future__ import annotations


def device_of(job) -> str:
    return "cuda" if job.gpus else "cpu"


def prompt_classes(ctx, dataset: str):
    """The classes whose prompts the dataset's stores embed (as `bench extract` gives them: its labels, then
    the shared classes it lacks)."""
    from benchmark.datasets.labels import prompt_classes as classes_of
    from benchmark.datasets.registry import registered_source

    labels = (registered_source(ctx.workdir, dataset) or {}).get("labels")
    return classes_of(tuple(labels)) if labels else None


def check(job, ctx) -> dict | None:
    from benchmark.pipelines.extract import cached_store

    payload = job.payload
    manifest, root, _ = ctx.registered(payload["dataset"])
    path = cached_store(payload["model"], manifest, root, workdir=ctx.workdir, weights=payload["weights"],
                        classes=prompt_classes(ctx, payload["dataset"]))
    return None if path is None else {"store": str(path)}


def run(job, ctx) -> dict:
    from benchmark.pipelines.extract import extract

    payload = job.payload
    manifest, root, _ = ctx.registered(payload["dataset"])
    path = extract(payload["model"], manifest, root, workdir=ctx.workdir, weights=payload["weights"],
                   trust_checkpoint=payload["trust_checkpoint"], device=device_of(job),
                   batch_size=payload["batch_size"], workers=payload["workers"], skip_bad=payload["skip_bad"],
                   progress=ctx.progress, classes=prompt_classes(ctx, payload["dataset"]))
    ctx.progress.note(f"store: {path}")
    return {"store": str(path)}
