"""`bench prompt-sensitivity`: zero-shot over several prompt sets, each figure's spread across them."""

from __future__ import annotations

from benchmark.commands.options import non_negative_int


def register(subparsers, common) -> None:
    from benchmark.pipelines.promptsets import DEFAULT_SETS

    parser = subparsers.add_parser(
        "prompt-sensitivity",
        parents=[common],
        help="zero-shot with several prompt sets: how much each figure moves between them",
        description=(
            "Fit the zero-shot head of an encoder with each prompt set (one run each, in the usual prediction "
            "schema), evaluate all with shared patient-clustered bootstrap draws, and show every figure per set "
            "with its spread: the range across sets (paired 95% CI) and the standard deviation. Extra sets' text "
            "embeddings are computed once with the encoder's text tower and cached beside its stores."
        ),
    )
    parser.add_argument("--model", required=True, help="encoder whose store to use (see `bench models`)")
    parser.add_argument("--task", required=True, help="task name, e.g. nih14, nofinding, nih6x200")
    parser.add_argument("--promptsets", default=",".join(DEFAULT_SETS), metavar="SETS",
                        help="comma-separated: family (the encoder's own), a set of the store, clip-templates, "
                             "chexzero-pairs, seed-study, or paths to prompt files (.json; see extractors/prompts/) "
                             f"(default {','.join(DEFAULT_SETS)})")
    parser.add_argument("--dataset", default="nih", help="registered dataset (default nih)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task split and the resampling (default 0)")
    parser.add_argument("--per-class", type=int, default=None, help="nih6x200: images per class")
    parser.add_argument("--n-boot", type=non_negative_int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--format", default="table", choices=("table", "md", "json"), help="output format")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    from benchmark import prompt_sensitivity as sensitivity
    from benchmark.core.workdir import Workdir
    from benchmark.pipelines.heads import HeadsRequest
    from benchmark.ui import RichProgress, console, err_console, print_table, say_random_weights

    names = [name.strip() for name in args.promptsets.split(",") if name.strip()]
    params = {} if args.per_class is None else {"per_class": args.per_class}
    request = HeadsRequest(model=args.model, task=args.task, heads=("zeroshot",), seed=args.seed, dataset=args.dataset,
                           task_params=params)
    result = sensitivity.prompt_sensitivity(Workdir.resolve(args.workdir), request, names, n_boot=args.n_boot,
                                            seed=args.seed, progress=RichProgress(out=err_console))
    for note in result.notes:
        err_console.print(f"[yellow]note[/] {note}", highlight=False)
    if any(run.random_init for run in result.runs.values()):
        say_random_weights(err_console, "these spreads")
    if args.format == "json":
        console.print_json(json.dumps({"runs": {name: r.run_id for name, r in result.runs.items()},
                                       "figures": {name: s.as_dict() for name, s in result.spreads.items()}}))
        return 0
    header, body = sensitivity.rows(result)
    caption = (f"range: max - min across the prompt sets, 95% CI from {args.n_boot} paired patient-clustered bootstrap "
               "replicates; SD: standard deviation across the sets")
    print_table(console, f"zero-shot prompt sensitivity: {args.model} on {args.task}", header, body, caption=caption,
                markdown=args.format == "md")
    return 0
