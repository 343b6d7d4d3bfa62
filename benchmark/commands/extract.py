"""`bench extract`: run a frozen encoder once over a dataset into an HDF5 embedding store."""

from __future__ import annotations

from benchmark.commands.options import non_negative_int, positive_int


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "extract",
        parents=[common],
        help="run a frozen encoder once over a dataset into an HDF5 embedding store",
        description=(
            "Decode the dataset's images once into a pixel store, run the frozen encoder over them and write its "
            "image embeddings and prompt-text embeddings into an HDF5 store keyed by everything that determines "
            "them. Running it again is a cache hit; an interrupted run resumes. Works under "
            "`torchrun --nproc-per-node N` (rows sharded across ranks)."
        ),
    )
    parser.add_argument("--model", required=True, help="encoder name from `bench models` (e.g. tiny-clip, gloria)")
    parser.add_argument(
        "--weights", nargs="+", action="extend", default=None, metavar="PATH",
        help="checkpoint file or folder (default: the weights folder / HF cache); several (--weights a.pt b.pt, or "
             "--weights repeated): the members of an ensemble, one store each (docs/encoders.md)",
    )
    parser.add_argument(
        "--trust-checkpoint", action="store_true",
        help="allow a checkpoint that needs arbitrary unpickling (only for files you trust)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--workers", type=non_negative_int, default=0, help="worker processes for decoding and loading (default 0)")
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="record images that cannot be decoded as excluded (listed in the store) instead of stopping",
    )
    parser.add_argument(
        "--keep-degenerate", action="store_true",
        help="embed tiny (< 16 px) or constant images instead of stopping (or excluding them with --skip-bad)",
    )
    parser.add_argument(
        "--verify-content", action="store_true",
        help="hash every image file to decide what changed (default: size and modification time, re-hashing "
             "only files whose size or time changed)",
    )
    from benchmark.commands.dataset_options import add_dataset_options

    add_dataset_options(parser, seed_flag="--split-seed")
    parser.add_argument(
        "--no-wait", action="store_true",
        help="stop with a message (instead of waiting) when another process is writing the same store",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from benchmark.core.distributed import environment_rank
    from benchmark.core.workdir import Workdir
    from benchmark.pipelines.extract import ExtractRequest, extract_dataset
    from benchmark.ui import RichProgress

    if args.metadata_only:
        from benchmark.core.errors import BenchError

        raise BenchError("--metadata-only checks a dataset without its images (`bench data check`); extraction needs the images.")
    request = ExtractRequest(
        model=args.model, root=args.root, dataset=args.dataset, weights=tuple(args.weights or ()) or None,
        trust_checkpoint=args.trust_checkpoint, device=args.device, batch_size=args.batch_size, workers=args.workers,
        skip_bad=args.skip_bad, keep_degenerate=args.keep_degenerate, verify_content=args.verify_content,
        wait=not args.no_wait, val_fraction=args.val_fraction, split_seed=args.split_seed,
        allow_missing_images=args.allow_missing_images, uncertain=args.uncertain, views=args.views,
        labeler=args.labeler, mimic_iv=args.mimic_iv, race_map=args.race_map,
    )
    outcome = extract_dataset(request, Workdir.resolve(args.workdir), RichProgress())
    if environment_rank() == 0:  # under torchrun only rank 0 reports
        for path, hit in zip(outcome.stores or (outcome.store,), outcome.cache_hits or (outcome.cache_hit,)):
            describe_store(path, hit)
        if len(outcome.stores) > 1:
            from benchmark.ui import console

            console.print(f"ensemble of {len(outcome.stores)} members: one store each; `bench fit-heads --model "
                          f"{args.model} --weights ...` with the same members averages their probabilities")
    return 0


def describe_store(path, cache_hit: bool) -> None:
    import json

    from benchmark.ui import console, say_random_weights
    from cache.embeddings import EmbeddingStore

    store = EmbeddingStore.open(path)
    excluded = int(store.excluded.sum())
    if cache_hit:
        console.print(f"cache hit: this extraction was done on {store.attrs.get('created', '?')}")
    else:
        timings = json.loads(store.attrs.get("timings", "{}"))
        if timings.get("embed_images_s"):
            rows, seconds = timings.get("embedded_rows", 0), timings["embed_images_s"]
            console.print(
                f"embedded {rows} images in {seconds:.2f} s ({rows / seconds:,.1f} img/s); pixel store "
                f"{timings.get('pixel_store_s', 0):.2f} s; prompt text {timings.get('embed_text_s', 0):.2f} s"
            )
    console.print(f"[bold]store:[/] {path}")
    console.print(
        f"  {store.model} ({store.weights_tag}{_digest_note(store)}) · {len(store)} images · "
        f"embedding dim {store.embed_dim}"
        + (" · local features" if store.has_local else "")
        + f" · prompt sets: {', '.join(store.promptsets) or 'none'}"
        + (f" · [yellow]{excluded} excluded (undecodable, tiny or constant: see excluded/ in the store)[/]" if excluded else "")
    )
    if store.weights_tag == "random-init":
        say_random_weights(console, "embeddings from this store", indent="  ")


def _digest_note(store) -> str:
    """The weights digest when the tag does not say it all (ensemble members, files outside the registry)."""
    digest = str(store.attrs.get("weights_digest", ""))
    return "" if digest in ("", store.weights_tag) else f", weights {digest[:16]}"
