"""Beside each encoder of a leaderboard: how much of each patient attribute its embeddings carry (`bench probe`).

A small addition to `bench leaderboard` (and a table of `bench report`): for the stores the ranked runs were
fitted on, the newest probe of each attribute (`benchmark.core.probes`), as one more table (rich, md)
or a "probes" entry of the JSON document. Runs without a store (fine-tuning, outside files) have no probe.
"""

from __future__ import annotations

import json

ATTRIBUTE_ORDER = ("sex", "age", "race", "insurance")


def encoder_probes(workdir, entries) -> tuple[list[str], list[dict]]:
    """(attributes, [{"encoder", "store", "probes": {attribute: newest record or None}}]) for the stores the
    entries' runs were fitted on, in the entries' order; stores without any probe are left out."""
    from benchmark.core.probes import latest_probes

    stores = {}
    for entry in entries:
        identity = getattr(entry.run.record, "store_identity", None)
        if identity:
            stores.setdefault(identity, entry.run.encoder)
    found = latest_probes(workdir, stores) if stores else {}
    attributes = sorted({attribute for _, attribute in found}, key=lambda a: (a not in ATTRIBUTE_ORDER,
                        ATTRIBUTE_ORDER.index(a) if a in ATTRIBUTE_ORDER else 0, a))
    encoders = []
    for identity, encoder in stores.items():
        probes = {attribute: found.get((identity, attribute)) for attribute in attributes}
        if any(probes.values()):
            encoders.append({"encoder": encoder, "store": identity, "probes": probes})
    return attributes, encoders


def probe_table(workdir, ranked) -> tuple[list[str], list[list[str]], dict]:
    """(header, rows, JSON entries) of the probes of the ranked runs' stores; no rows when there are none."""
    attributes, encoders = encoder_probes(workdir, ranked)
    header, rows, entries = ["encoder", "store"] + [f"{a} AUC" for a in attributes], [], {}
    for item in encoders:
        encoder, identity, probes = item["encoder"], item["store"], item["probes"]
        rows.append([encoder, identity[:12]] + [_cell(probes[a]) for a in attributes])
        entries[f"{encoder} {identity[:12]}"] = {a: {"auc": p["auc"], "dataset": p["dataset"], "levels": p["levels"]}
                                                 for a, p in probes.items() if p}
    return header, rows, entries


def _cell(record) -> str:
    if not record:
        return ""
    auc = record["auc"]
    low, high = auc["ci"]
    return f"{auc['value']:.3f}" + ("" if low is None else f" [{low:.3f}, {high:.3f}]")


NOTE = ("demographic encoding: test AUC of a linear probe predicting the attribute from the encoder's embeddings "
        "(`bench probe`; 0.5 = none, 1.0 = fully encoded), patient-clustered 95% CI")


def show(workdir, ranked, *, fmt: str, text: str | None, console) -> str | None:
    """Add the probes to a rendered leaderboard: JSON gains a "probes" entry, md a table; the rich table format
    prints one more table on `console`. Returns the (possibly extended) text."""
    header, rows, entries = probe_table(workdir, ranked)
    if not rows or fmt == "csv":
        return text
    if fmt == "json":
        document = json.loads(text)
        document["probes"] = entries
        return json.dumps(document, indent=2)
    from benchmark.ui import markdown_table, print_table

    if fmt == "md":
        return text + "\n\n### demographic encoding\n\n" + markdown_table(header, rows) + "\n\n" + NOTE
    print_table(console, "demographic encoding of each encoder", header, rows, caption=NOTE)
    return text
