"""`bench perf ...`: benchmarks that print ratios measured side by side in one run.

Each benchmark lives in `benchmark/perf/<name>.py` and exposes `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import importlib

BENCHMARKS = {
    "extract": "pipeline throughput with a warm pixel cache vs forward-only; cold vs warm; cache-hit re-run",
    "heads": "linear + MLP + zero-shot heads on an NIH-size synthetic store; linear probe vs scikit-learn",
    "finetune": "training images/s: LoRA, full fine-tuning and a frozen forward pass",
    "fairness": "patient-clustered bootstrap engine vs fairlearn MetricFrame",
    "data": "loading full-size CheXpert and MIMIC-CXR metadata (adapter vs raw parse) on 2 cores",
    "run": "bench run: a fully cached re-run of demo.toml vs its first run; planning a 1,000-job experiment",
    "report": "bench report on 100 runs x 25,000 test images: collecting, drawing, writing (vs the evaluation)",
}


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "perf", parents=[common], help="benchmarks (side-by-side ratios)", description=__doc__
    )
    perf_sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, help_text in BENCHMARKS.items():
        sub = perf_sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        module = importlib.import_module(f"benchmark.perf.{name}")
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
