"""`bench fit-heads`: train cheap heads off an embedding store (the heads registry lists them)."""

from __future__ import annotations

import argparse

from benchmark.commands.options import positive_float, positive_int


def _heads(text: str) -> tuple[str, ...]:
    from benchmark.core.errors import BenchError
    from heads.registry import parse_heads

    try:
        return parse_heads(text)
    except BenchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers such as 0.01,0.1,1") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: C values must be positive")
    return values


def batch_size(text: str) -> int:
    """A mini-batch of two or more rows (the MLP's BatchNorm needs two)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value} must be at least 2 (BatchNorm needs two rows per batch)")
    return value


def _heads_help() -> str:
    from heads.registry import DEFAULT_HEADS, HEADS

    listing = "; ".join(f"{name}: {spec.description}" for name, spec in HEADS.items())
    return f"comma-separated heads (default {','.join(DEFAULT_HEADS)}). {listing}"


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "fit-heads",
        parents=[common],
        help="train cheap heads (linear, mlp, zeroshot) off an embedding store",
        description=(
            "Fit heads on the train split of a task from a model's embedding store (made by `bench extract`), "
            "choose their settings on val, and write one prediction run per head (val + test images) under "
            "<workdir>/runs/<task>/. The heads never open an image."
        ),
    )
    parser.add_argument("--model", required=True, help="encoder name whose store to use (see `bench models`)")
    parser.add_argument("--task", required=True, help="task name: nih14, nofinding, nih6x200, chexpert14, mimic14, common")
    from heads.registry import DEFAULT_HEADS

    parser.add_argument("--heads", type=_heads, default=DEFAULT_HEADS, help=_heads_help())
    parser.add_argument("--seed", type=int, default=0, help="seed for the task subset/split and the heads (default 0)")
    parser.add_argument("--dataset", "--train-on", dest="dataset", default="nih",
                        help="registered dataset to fit on (default nih); --train-on is the same option")
    parser.add_argument("--test-on", default=None, metavar="DATASETS",
                        help="comma-separated registered datasets to test on, e.g. nih,chexpert: one prediction run per "
                             "dataset (val rows and thresholds from the training dataset; out of distribution); name the "
                             "training dataset too for its in-distribution run (default: test on the training dataset)")
    parser.add_argument("--per-class", type=positive_int, default=None, help="nih6x200: images per class (default 200)")
    parser.add_argument(
        "--task-param", action="append", default=[], metavar="KEY=VALUE",
        help="other task parameters, e.g. split_fractions=0.7,0.1,0.2 (repeatable)",
    )
    parser.add_argument(
        "--weights", nargs="+", action="extend", default=None, metavar="PATH",
        help="use the store made with this checkpoint (as given to `bench extract`) when several exist; several: "
             "their ensemble, each head fitted per member and the members' probabilities averaged",
    )
    parser.add_argument("--weights-digest", nargs="+", action="extend", default=None, metavar="DIGEST",
                        help="as --weights, naming the weights by their digest (sha256)")
    add_head_settings(parser)
    parser.set_defaults(func=run)


def add_head_settings(parser) -> None:
    """The options that set the heads' own parameters."""
    parser.add_argument("--C-grid", dest="c_grid", type=_floats, default=None, help="linear: C values to sweep (default 1e-4..10)")
    parser.add_argument("--linear-scoring", choices=("loss", "auc"), default="loss", help="linear: pick C by val log-loss or macro AUC")
    parser.add_argument("--mlp-epochs", type=positive_int, default=None, help="mlp: maximum epochs (default 50, early stopping on val loss)")
    parser.add_argument("--mlp-lr", type=positive_float, default=None, help="mlp: AdamW learning rate (default 1e-3; the seed study used 1e-4)")
    parser.add_argument("--mlp-batch-size", type=batch_size, default=None, help="mlp: batch size (default 256; the seed study used 64)")
    parser.add_argument("--seed-linear-epochs", type=positive_int, default=None, help="seed-linear: maximum epochs (default 100)")
    parser.add_argument(
        "--protect", default=None, metavar="ATTRIBUTE",
        help="mitigation heads: the protected attribute, sex, age (<60 / >=60), race, insurance or an intersection "
             "such as sex*age (docs/mitigation.md)",
    )
    parser.add_argument(
        "--head-param", action="append", default=[], metavar="HEAD.KEY=VALUE",
        help="any parameter a head takes (as in experiment files), e.g. thresholds-eqodds.min_group_positives=5 "
             "or linear-groupdro.step_sizes=0.01,0.1 (repeatable)",
    )
    parser.add_argument("--promptset", default=None, help="zeroshot: prompt set in the store (default: 'default')")
    parser.add_argument(
        "--zeroshot-temperature", choices=("none", "fit"), default="none",
        help="zeroshot: 'fit' divides logits by one temperature fitted on val log-loss (recorded as such)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None,
        help="CPU threads for the heads (default: torch's, one per core; 1 is often faster on a machine busy with other jobs)",
    )
    parser.add_argument("--force", action="store_true", help="replace an identical earlier run instead of adding a new one")


def _datasets(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        from benchmark.core.errors import BenchError

        raise BenchError(f"--test-on {text!r} names no dataset; give registered dataset names such as nih,chexpert")
    return names


def head_params(args) -> dict:
    """Estimator parameters per head from the command line (unset options keep each head's defaults)."""
    def given(*pairs):
        return {key: value for key, value in pairs if value is not None}

    params = {
        "linear": given(("Cs", args.c_grid), ("scoring", args.linear_scoring)),
        "mlp": given(("max_epochs", args.mlp_epochs), ("lr", args.mlp_lr), ("batch_size", args.mlp_batch_size)),
        "seed-linear": given(("max_epochs", args.seed_linear_epochs)),
        "zeroshot": given(("temperature", None if args.zeroshot_temperature == "none" else "fit")),
    }
    for text in getattr(args, "head_param", None) or ():
        name, key, value = parse_head_param(text)
        params.setdefault(name, {})[key] = value
    return params


def parse_head_param(text: str) -> tuple[str, str, object]:
    """(head, key, typed value) of one --head-param HEAD.KEY=VALUE, typed by the head's settable parameters."""
    from benchmark.core.errors import BenchError
    from heads.registry import get_head

    target, _, value = text.partition("=")
    name, _, key = target.rpartition(".")
    if not name or not key or not value:
        raise BenchError(f"--head-param {text!r}: write HEAD.KEY=VALUE, e.g. thresholds-eqodds.min_group_positives=5")
    settable = get_head(name).settable
    if key not in settable:
        raise BenchError(f"--head-param {text!r}: head {name} has no parameter {key!r}; it takes: "
                         f"{', '.join(settable) or 'none'}")
    kind = settable[key]
    try:
        if kind == "boolean":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return name, key, value.lower() == "true"
        convert = {"integer": int, "number": float, "numbers": lambda v: tuple(float(x) for x in v.split(","))}
        return name, key, convert.get(kind, str)(value)
    except ValueError:
        raise BenchError(f"--head-param {text!r}: {key} takes {kind.replace('numbers', 'comma-separated numbers')}, "
                         f"not {value!r}") from None


def run(args) -> int:
    from benchmark.core.workdir import Workdir
    from benchmark.pipelines.heads import HeadsRequest, fit_heads
    from benchmark.tasks import parse_task_params
    from benchmark.ui import RichProgress

    workdir = Workdir.resolve(args.workdir)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    task_params = parse_task_params(args.task, args.task_param)
    if args.per_class is not None:
        task_params.update(parse_task_params(args.task, [f"per_class={args.per_class}"]))
    weights_digest, ensemble = chosen_weights(args)
    request = HeadsRequest(
        model=args.model, task=args.task, heads=tuple(args.heads), seed=args.seed, dataset=args.dataset,
        task_params=task_params, weights_digest=weights_digest, ensemble=ensemble, head_params=head_params(args),
        promptset=args.promptset, force=args.force, test_on=_datasets(args.test_on), protect=args.protect,
    )
    results = fit_heads(workdir, request, RichProgress())
    print_results(results, args.model, args.task, workdir)
    return 0


def chosen_weights(args) -> tuple[str | None, tuple[str, ...]]:
    """(the weights digest of one checkpoint or None, the members' digests of an ensemble or ()) from --weights
    or --weights-digest."""
    from benchmark.core.errors import BenchError

    if args.weights and args.weights_digest:
        raise BenchError("give --weights or --weights-digest, not both")
    if args.weights:
        from benchmark.pipelines.ensemble import member_digests

        digests = member_digests(args.model, args.weights)
    else:
        digests = tuple(args.weights_digest or ())
        if len(set(digests)) < len(digests):
            raise BenchError("--weights-digest names a digest twice; name each member of an ensemble once")
    if len(digests) > 1:
        return None, digests
    return (digests[0] if digests else None), ()


def print_results(results, model: str, task: str, workdir) -> None:
    from rich.table import Table

    from benchmark.ui import console, say_random_weights

    table = Table(title=f"{model} on {task}: one prediction run per head")
    table.add_column("head", no_wrap=True)
    shifted = any(result.test_dataset for result in results)
    if shifted:
        table.add_column("tested on", no_wrap=True)
    table.add_column("chosen on val")
    table.add_column("val AUC", no_wrap=True)
    table.add_column("s", no_wrap=True)
    table.add_column("run id", overflow="fold")
    for result in results:
        tested = [result.test_dataset or "(training dataset)"] if shifted else []
        table.add_row(result.head, *tested, _chosen_summary(result.chosen), f"{result.val_macro_auc:.3f}",
                      f"{result.seconds:.1f}", result.run_id)
    console.print(table)
    for result in results:
        if result.replaced:
            console.print(f"{result.head}: replaced the identical earlier run {result.replaced} (--force)")
        elif result.earlier_identical:
            console.print(
                f"{result.head}: {len(result.earlier_identical)} identical earlier run(s) kept "
                f"({', '.join(result.earlier_identical[-2:])}); --force replaces the newest"
            )
    for result in results:
        left = result.chosen.get("unconstrained_class_names")
        if left:
            console.print(f"[yellow]note[/] {result.head}: {len(left)} class(es) not constrained, too few positives or "
                          f"negatives in some group: {', '.join(left)}; they keep the plain head's probability "
                          f"(--head-param {result.head}.min_group_positives=N sets the minimum)", highlight=False)
        if result.chosen.get("needs_attribute_at_test"):
            console.print(f"{result.head}: thresholds each image by its own group, so the protected attribute must be "
                          "known at test time (recorded in the run)")
    if results and results[0].random_init:
        say_random_weights(console, "these predictions")
    console.print(f"runs written under {workdir.task_runs_dir(task)}; list them with `bench runs --task {task}`")


def _chosen_summary(chosen: dict) -> str:
    """A few words for the table; the full record is in the run's metadata."""
    if "members" in chosen:  # an ensemble: what each member chose
        return f"{len(chosen['members'])} members: " + "; ".join(_chosen_summary(c) for c in chosen["members"])
    if "C" in chosen:
        return f"C={chosen['C']:g}"
    if "step_size" in chosen:
        return f"eta={chosen['step_size']:g}, epoch {chosen['best_epoch']} of {chosen['epochs_run']}"
    if "best_epoch" in chosen:
        return f"epoch {chosen['best_epoch']} of {chosen['epochs_run']}"
    if chosen.get("decisions"):
        return "group thresholds" if chosen.get("needs_attribute_at_test") else f"C={chosen['C']:g}, constrained"
    parts = ["pairs" if chosen.get("pairs") else chosen.get("prompt_style", "")]
    if "temperature" in chosen:
        parts.append(f"T={chosen['temperature']:.3g}")
    return ", ".join(p for p in parts if p)
