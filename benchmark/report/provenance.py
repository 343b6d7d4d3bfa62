"""Where a report's numbers come from: the runs (encoder, method, seed, weights digest or "random weights",
dataset and manifest digest, task parameters), the datasets (synthetic or not), package versions and the
command line. The page's banner and footer are written from this.

Synthetic data is recognised by the file every synthetic generator of the project writes at the dataset's root
(`SYNTHETIC_MARKER`, the generators' `EFFECTS_NAME`; a test keeps the two equal), read through the root that
the workdir registered for the run's dataset. Outside prediction files carry no such record: the page says
that it cannot tell.
"""

from __future__ import annotations

import datetime as _dt
import json
import shlex
from pathlib import Path

SYNTHETIC_MARKER = "synthetic_effects.json"
REPORT_PACKAGES = ("cxr-fairbench", "numpy", "scipy", "polars", "scikit-learn", "matplotlib", "torch",
                   "open_clip_torch", "transformers", "timm")


def _weights(record) -> str:
    if record.is_external:
        return "not recorded (outside file)"
    if record.random_init:
        return "random weights"
    return record.weights_digest[:16] if record.weights_digest else (record.weights_tag or "not recorded")


def run_row(run) -> dict:
    record = run.record
    return {"name": run.name, "encoder": run.encoder, "method": run.method, "seed": run.seed,
            "weights": _weights(record), "random_weights": bool(record.random_init),
            "dataset": record.dataset, "test_dataset": record.test_dataset, "manifest_digest": record.manifest_digest,
            "task": record.task, "task_params": record.task_params, "experiment": record.experiment,
            "created": record.created, "source": run.source, "external": record.is_external}


def dataset_rows(runs, workdir) -> dict:
    """name -> {"root", "digest", "rows", "synthetic"} of the registered datasets the runs used."""
    names = sorted({name for run in runs for name in (run.record.dataset, run.record.test_dataset) if name})
    out = {}
    for name in names:
        source = _registered_source(workdir, name) if workdir is not None else None
        root = Path(source["root"]) if source and source.get("root") else None
        out[name] = {"root": str(root) if root else None, "digest": source.get("digest") if source else None,
                     "rows": source.get("rows") if source else None,
                     "synthetic": bool(root and (root / SYNTHETIC_MARKER).is_file())}
    return out


def _registered_source(workdir, name: str) -> dict | None:
    from benchmark.core.workdir import Workdir

    try:
        return json.loads(Workdir.of(workdir).source_path(name).read_text())
    except (OSError, ValueError):
        return None


def command_line(argv) -> str:
    return argv if isinstance(argv, str) else "bench " + " ".join(shlex.quote(str(a)) for a in argv)


def provenance(runs, *, workdir=None, command="", options: dict | None = None) -> dict:
    """The provenance document of a report over `runs` (RunInputs) from `workdir` (None: outside files only)."""
    from benchmark.core.versions import package_versions

    rows = [run_row(run) for run in runs]
    datasets = dataset_rows(runs, workdir)
    return {
        "runs": rows,
        "datasets": datasets,
        "synthetic_datasets": sorted(name for name, row in datasets.items() if row["synthetic"]),
        "random_weights": [row["name"] for row in rows if row["random_weights"]],
        "outside_files": [row["name"] for row in rows if row["external"]],
        "encoders": sorted({row["encoder"] for row in rows}),
        "seeds": sorted({row["seed"] for row in rows if row["seed"] is not None}),
        "task_params": _distinct([row["task_params"] for row in rows if not row["external"]]),
        "versions": package_versions(REPORT_PACKAGES),
        "command": command_line(command),
        "options": options or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "workdir": str(workdir) if workdir is not None else None,
    }


def _distinct(values: list) -> list:
    seen, out = set(), []
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def warnings(provenance: dict) -> list[str]:
    """The sentences the page's banner shows (none for real data with trained weights)."""
    out = []
    if provenance.get("synthetic_datasets"):
        out.append(f"SYNTHETIC DATA: the images of {', '.join(provenance['synthetic_datasets'])} are procedural "
                   "phantoms with planted subgroup effects, not X-rays of patients.")
    randoms = provenance.get("random_weights") or []
    if randoms:
        n, total = len(randoms), len(provenance.get("runs", []))
        out.append(f"RANDOM WEIGHTS: {n} of {total} runs use encoders with random (untrained) weights.")
    if out:
        out.append("These numbers show that the software works. They are not medical findings and say nothing "
                   "about any model or patient group.")
    outside = provenance.get("outside_files") or []
    if outside:
        out.append(f"{len(outside)} run(s) come from outside prediction files: this tool cannot tell whether "
                   "their data or weights are real; see their source.")
    return out
