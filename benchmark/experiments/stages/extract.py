"""extract/<encoder>/<dataset>: the frozen encoder over the registered dataset, once, into its embedding store
(`benchmark.pipelines.extract.extract`; an ensemble: one store per member, `benchmark.pipelines.ensemble`). Done
when the store of the same identity is complete (`cached_store`), every member's for an ensemble."""

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
    from benchmark.pipelines.ensemble import cached_members

    payload = job.payload
    manifest, root, _ = ctx.registered(payload["dataset"])
    paths = cached_members(payload["model"], manifest, root, workdir=ctx.workdir, weights=payload["weights"],
                           classes=prompt_classes(ctx, payload["dataset"]))
    return None if paths is None else stores_output(paths)


def run(job, ctx) -> dict:
    from benchmark.pipelines.ensemble import extract_members

    payload = job.payload
    manifest, root, _ = ctx.registered(payload["dataset"])
    paths = extract_members(payload["model"], manifest, root, workdir=ctx.workdir, weights=payload["weights"],
                            trust_checkpoint=payload["trust_checkpoint"], device=device_of(job),
                            batch_size=payload["batch_size"], workers=payload["workers"],
                            skip_bad=payload["skip_bad"], progress=ctx.progress,
                            classes=prompt_classes(ctx, payload["dataset"]))
    for path in paths:
        ctx.progress.note(f"store: {path}")
    return stores_output(paths)


def stores_output(paths) -> dict:
    """The job's output: its store, or an ensemble's member stores."""
    return {"store": str(paths[0])} if len(paths) == 1 else {"stores": [str(path) for path in paths]}
