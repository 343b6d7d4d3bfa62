"""`bench perf data`: loading full-size CheXpert and MIMIC-CXR metadata, against the raw parse of the same files.

Writes synthetic metadata of the releases' size in their exact layouts (no images: `--metadata-only`):
CheXpert ~224,000 images of ~65,000 patients (train.csv, valid.csv, test_labels.csv, CHEXPERT DEMO.xlsx) and
MIMIC-CXR-JPG ~377,000 images of ~65,000 patients (metadata, split and label files, .csv.gz) with MIMIC-IV
patients and admissions. Then, in a child process held to `--cores` CPUs (and polars to as many threads), it
times, side by side:

- raw: reading the same files into frames, nothing else (polars read_csv / read_excel);
- adapter: the whole adapter, `load_dataset(..., metadata_only=True)`: the reads plus every check, the label
  policy, views, splits, the demographics join and the race / insurance mapping, and the manifest validation.

The target: the adapter within 10 s on 2 cores for each dataset.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

SIZES = {"chexpert": 224_000, "mimic": 377_000}
BUDGET_S = 10.0


def add_arguments(parser) -> None:
    parser.add_argument("--cores", type=int, default=2, help="CPUs (and polars threads) the timed loads may use (default 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1: full size)")
    parser.add_argument("--repeats", type=int, default=2, help="timed loads per dataset; the fastest counts (default 2)")
    parser.add_argument("--keep", default=None, metavar="DIR", help="write the metadata here and keep it (default: a temporary folder)")


def write_metadata(folder: Path, scale: float) -> dict[str, dict]:
    """The two layouts' metadata (no images) under `folder`; returns how to load each."""
    from benchmark.datasets.synth_chexpert import write_chexpert_synthetic
    from benchmark.datasets.synth_mimic import MIMIC_IV, RELEASE, write_mimic_synthetic

    chexpert = write_chexpert_synthetic(folder / "chexpert", n=max(50, int(SIZES["chexpert"] * scale)), size=64,
                                        effects="none", metadata_only=True)
    mimic = write_mimic_synthetic(folder / "mimic", n=max(50, int(SIZES["mimic"] * scale)), size=64, effects="none",
                                  metadata_only=True)
    return {
        "chexpert": {"root": str(chexpert), "options": {}},
        "mimic": {"root": str(mimic / RELEASE), "options": {"mimic_iv": str(mimic / MIMIC_IV)}},
    }


def _raw_files(name: str, spec: dict) -> list[Path]:
    root = Path(spec["root"])
    if name == "chexpert":
        release = root / "CheXpert-v1.0-small"
        return [release / "train.csv", release / "valid.csv", release / "test_labels.csv", root / "CHEXPERT DEMO.xlsx"]
    mimic_iv = Path(spec["options"]["mimic_iv"]) / "hosp"
    return [*sorted(root.glob("mimic-cxr-2.0.0-*.csv.gz")), mimic_iv / "patients.csv.gz", mimic_iv / "admissions.csv.gz"]


def _time_child(queue, specs: dict, cores: int, repeats: int) -> None:
    """In a fresh process: hold to `cores` CPUs, then time the raw reads and the adapters."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    import polars as pl

    from benchmark.datasets.adapters import load_dataset
    from benchmark.datasets.common import LoadOptions

    results = {}
    for name, spec in specs.items():
        raw, adapter = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            for path in _raw_files(name, spec):
                (pl.read_excel(path, engine="calamine") if path.suffix == ".xlsx" else pl.read_csv(path, infer_schema=False))
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            dataset = load_dataset(name, spec["root"], LoadOptions(metadata_only=True, views="all", **spec["options"]))
            adapter.append(time.perf_counter() - started)
        manifest = dataset.manifest
        results[name] = {"images": manifest.height, "patients": manifest["patient_id"].n_unique(),
                         "raw_s": min(raw), "adapter_s": min(adapter), "threads": pl.thread_pool_size()}
    queue.put(results)


def measure(specs: dict, *, cores: int, repeats: int) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    previous = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = str(cores)
    try:
        child = context.Process(target=_time_child, args=(queue, specs, cores, repeats))
        child.start()
        results = queue.get()
        child.join()
    finally:
        if previous is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = previous
    return results


def run(args) -> int:
    from rich.table import Table

    from benchmark.core.errors import BenchError
    from benchmark.ui import console

    if args.cores < 1 or args.repeats < 1 or not 0 < args.scale <= 1:
        raise BenchError("--cores and --repeats must be at least 1 and --scale in (0, 1].")
    with tempfile.TemporaryDirectory(prefix="bench-perf-data-") as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch)
        started = time.perf_counter()
        specs = write_metadata(folder, args.scale)
        written = time.perf_counter() - started
        results = measure(specs, cores=args.cores, repeats=args.repeats)
    if args.json:
        console.print(json.dumps({"cores": args.cores, "budget_s": BUDGET_S, "results": results}, indent=2), markup=False)
        return 0
    table = Table(title=f"loading release metadata (metadata only) on {args.cores} core(s); fastest of {args.repeats}")
    for column in ("dataset", "images", "patients", "raw read s", "adapter s", "adapter / raw", "budget"):
        table.add_column(column, justify="right" if column != "dataset" else "left")
    for name, r in results.items():
        verdict = "within 10 s" if r["adapter_s"] <= BUDGET_S else "OVER 10 s"
        table.add_row(name, f"{r['images']:,}", f"{r['patients']:,}", f"{r['raw_s']:.2f}", f"{r['adapter_s']:.2f}",
                      f"{r['adapter_s'] / r['raw_s']:.1f}x", verdict)
    console.print(table)
    console.print(f"synthetic metadata written in {written:.1f} s (not timed); raw = parsing the same files, nothing else; "
                  "adapter = parse + checks + labels + splits + demographics + race/insurance map + manifest validation",
                  highlight=False)
    return 0
