"""`bench models`: list the encoder registry and whether weights are found locally"""

from __future__ import annotations

import json

HELP = "list the encoder registry and whether weights are found locally"


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("models", parents=[common], help=HELP, description=HELP)
    parser.add_argument("--json", action="store_true", help="print the registry as JSON (for scripts)")
    parser.add_argument(
        "--variant", choices=("official", "tiny"), default=None, help="only list official or tiny encoders"
    )
    parser.set_defaults(func=run)


def model_rows(variant: str | None = None) -> list[dict]:
    """One dict per registered encoder: the spec's headline fields and where its weights are."""
    from extractors.registry import REGISTRY
    from extractors.weights import WEIGHTS_ENV, find_weights, places_looked

    rows = []
    for spec in REGISTRY.values():
        if variant and spec.variant != variant:
            continue
        found = find_weights(spec) if spec.weights else None
        if found is not None:
            weights, path = "found", str(found.path)
        elif spec.variant == "tiny":
            weights, path = "random-init", None
        else:
            weights, path = "missing", None
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "variant": spec.variant,
                "architecture": spec.architecture,
                "image_embed_dim": spec.image_embed_dim,
                "text_embed_dim": spec.text_embed_dim,
                "pixel_size": spec.preprocess.pixel_size,
                "prompt_style": spec.prompt_style,
                "weights": weights,
                "weights_path": path,
                "weights_needed": [s.filename for s in spec.weights],
                "weights_published_at": [s.published_at for s in spec.weights],
                "looked_in": places_looked(spec) if spec.weights else [],
                "weights_env": WEIGHTS_ENV,
                "paper": spec.paper,
                "licence": spec.licence,
            }
        )
    return rows


def run(args) -> int:
    from rich.table import Table

    from benchmark.ui import console

    rows = model_rows(args.variant)
    if args.json:
        console.print_json(json.dumps(rows))
        return 0
    table = Table(title="Encoder registry", show_lines=False)
    # the name never wraps and paper/licence may wrap: with no_wrap on paper/licence, rich shrank every other
    # column to nothing on an 80-column terminal (the names disappeared)
    table.add_column("name", no_wrap=True)
    for column in ("family", "variant", "dims img/txt", "pixels", "weights"):
        table.add_column(column, overflow="fold")
    for column in ("paper", "licence"):
        table.add_column(column, overflow="ellipsis", max_width=28)
    style = {"found": "green", "random-init": "yellow", "missing": "red"}
    for row in rows:
        weights = f"[{style[row['weights']]}]{row['weights']}[/]"
        if row["weights_path"]:
            weights += f"\n{row['weights_path']}"
        elif row["weights"] == "missing":
            weights += f"\nneeds {row['weights_needed'][0]}"
        table.add_row(
            row["name"],
            row["family"],
            row["variant"],
            f"{row['image_embed_dim']}/{row['text_embed_dim']}",
            str(row["pixel_size"]),
            weights,
            row["paper"],
            row["licence"],
        )
    console.print(table)
    missing = [row for row in rows if row["weights"] == "missing"]
    if missing:
        console.print(
            f"Weights are looked for in --weights PATH, ${rows[0]['weights_env']} and the offline Hugging Face "
            f"cache ({'; '.join(missing[0]['looked_in'])}). `bench extract --model NAME` says where each "
            "missing file is published. tiny-* encoders are random-init: their results are not medical findings."
        )
    return 0
