"""`bench probe`: how much of a patient attribute an encoder's embeddings carry (a linear probe's AUC with a CI)."""

from __future__ import annotations

from benchmark.commands.options import non_negative_int


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "probe",
        parents=[common],
        help="demographic-encoding probe: predict sex, age, race or insurance from an encoder's embeddings",
        description=(
            "Fit a linear probe that predicts a patient attribute from the cached embeddings of a model (made by "
            "`bench extract`) on the dataset's patient-disjoint splits, and report its test AUC with a "
            "patient-clustered bootstrap CI: how much of the attribute the encoder carries. The result is kept in "
            "the workdir and shown beside the encoder in `bench leaderboard`."
        ),
    )
    parser.add_argument("--model", required=True, help="encoder whose store to probe (see `bench models`)")
    parser.add_argument("--attribute", required=True, metavar="ATTRIBUTES",
                        help="comma-separated: sex, age (<60 / >=60), race, insurance, or an intersection such as sex*age")
    parser.add_argument("--dataset", default="nih", help="registered dataset (default nih)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe's holdout and the bootstrap (default 0)")
    parser.add_argument("--n-boot", type=non_negative_int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--weights-digest", default=None, help="pick the store made with these weights when several exist")
    parser.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from benchmark.core.errors import BenchError
    from benchmark.core.workdir import Workdir
    from benchmark.pipelines.probe import ProbeRequest, run_probe
    from benchmark.ui import RichProgress, console, say_random_weights

    attributes = [part.strip() for part in args.attribute.split(",") if part.strip()]
    if not attributes:
        raise BenchError(f"--attribute {args.attribute!r} names no attribute; use sex, age, race or insurance")
    workdir = Workdir.resolve(args.workdir)
    table = Table(title=f"{args.model} on {args.dataset}: how well a linear probe reads each attribute")
    for column in ("attribute", "levels", "test AUC [95% CI]", "train / val / test images", "test patients"):
        table.add_column(column)
    records = []
    for attribute in attributes:
        request = ProbeRequest(model=args.model, attribute=attribute, dataset=args.dataset, seed=args.seed,
                               n_boot=args.n_boot, weights_digest=args.weights_digest)
        record, _ = run_probe(workdir, request, RichProgress())
        records.append(record)
        auc = record["auc"]
        ci = "" if auc["ci"][0] is None else f" [{auc['ci'][0]:.3f}, {auc['ci'][1]:.3f}]"
        table.add_row(attribute, ", ".join(record["levels"]), f"{auc['value']:.3f}{ci}",
                      " / ".join(f"{record['rows'][s]:,}" for s in ("train", "val", "test")), f"{record['test_patients']:,}")
    console.print(table)
    console.print("0.5: the embeddings carry nothing of the attribute a linear probe can read; 1.0: all of it. "
                  f"Patient-clustered bootstrap ({args.n_boot} replicates). Kept in {workdir.probes_dir}.")
    if any(record["random_init"] for record in records):
        say_random_weights(console, "these AUCs")
    return 0
