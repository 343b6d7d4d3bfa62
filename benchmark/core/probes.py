"""Demographic-encoding probe results on disk: one JSON per (store, attribute, seed), written by `bench probe`.

    write_probe(workdir, record)                 # record: the dict `benchmark.pipelines.probe` builds
    latest_probes(workdir, store_identities)     # {(store identity, attribute): newest record}

A record names its encoder, store identity, dataset, attribute, levels, split sizes and the probe's test AUC
with its patient-clustered CI (`auc: {"value", "ci"}`). The leaderboard reads them to show, beside each encoder,
how much of each attribute its embeddings carry.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.core.atomic import write_json
from benchmark.core.identity import finite_or_none
from benchmark.core.workdir import Workdir

PROBE_KIND = "cxr-fairbench demographic-encoding probe"


def write_probe(workdir, record: dict) -> Path:
    """Write `record` (replacing the probe of the same store, attribute and seed) and return its path."""
    path = Workdir.of(workdir).probe_path(record["encoder"], record["store_identity"], record["attribute_name"],
                                         record["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, finite_or_none({"kind": PROBE_KIND, **record}))


def read_probes(workdir, model: str | None = None) -> list[dict]:
    """Every readable probe record (of `model`, or of every encoder); unreadable files are skipped."""
    folder = Workdir.of(workdir).probes_dir
    pattern = f"{model}/*.json" if model else "*/*.json"
    records = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("kind") == PROBE_KIND:
            records.append(record)
    return records


def latest_probes(workdir, store_identities=None) -> dict[tuple[str, str], dict]:
    """{(store identity, attribute): the newest probe record} (only those stores when `store_identities` is given)."""
    wanted = None if store_identities is None else set(store_identities)
    latest: dict[tuple[str, str], dict] = {}
    for record in read_probes(workdir):
        key = (record.get("store_identity", ""), record.get("attribute", ""))
        if wanted is not None and key[0] not in wanted:
            continue
        if key not in latest or record.get("created", "") > latest[key].get("created", ""):
            latest[key] = record
    return latest
