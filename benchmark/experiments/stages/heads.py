"""heads/<encoder>/<task>/seed<S>: every head method of the experiment on the encoder's store
(`benchmark.pipelines.heads.fit_heads`), one prediction run per head (with the task's `test_on`: one per head and
test dataset, `benchmark.pipelines.transfer`). Done, head by head, when an identical
run exists (`benchmark.pipelines.heads.identical_runs`: same encoder, weights, method, seed, store, task
parameters and hyperparameters); a resumed job fits only the heads that have none.

A run's identity includes the hyperparameters its estimator records, and finding them means building the
estimator (importing torch). The job remembers them in the experiment folder (`memo/`), keyed by everything
that determines them, the heads' source code included, so that a later cache check needs no torch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from benchmark.core.atomic import write_json
from benchmark.core.identity import digest
from benchmark.experiments.stages import run_output


def request_of(job):
    from benchmark.pipelines.ensemble import is_ensemble, member_digests
    from benchmark.pipelines.heads import HeadsRequest

    payload = job.payload
    ensemble = is_ensemble(payload["weights"])
    return HeadsRequest(
        model=payload["model"], task=payload["task"], heads=tuple(payload["heads"]), seed=payload["seed"],
        dataset=payload["dataset"], task_params=payload["task_params"], task_seed=payload["task_seed"],
        weights_digest=None if ensemble else _weights_digest(payload), head_params=payload["head_params"],
        ensemble=member_digests(payload["model"], payload["weights"]) if ensemble else (),
        promptset=payload["promptset"], experiment=payload["experiment"], protect=payload.get("protect"),
        test_on=tuple(payload.get("test_on", ())),
    )


def _weights_digest(payload: dict) -> str | None:
    from benchmark.pipelines.extract import expected_weights_digest

    return expected_weights_digest(payload["model"], payload["weights"])


def check(job, ctx) -> dict | None:
    from benchmark.pipelines.heads import prepare_inputs

    request = request_of(job)
    inputs = prepare_inputs(ctx.workdir, request, embeddings=False, manifest=ctx.registered(request.dataset)[0])
    recorded = {name: _remembered(ctx.folder, _memo_key(request, inputs, name)) for name in request.heads}
    if any(value is None for value in recorded.values()):
        return None
    found = _existing(ctx, request, inputs, recorded, runs=ctx.runs(request.task))
    if not all(found.values()):
        return None
    return {"runs": {_output_key(head, test): run_output(runs[-1].path) for (head, test), runs in found.items()}}


def run(job, ctx) -> dict:
    from benchmark.pipelines.heads import fit_heads, planned_hyperparameters, prepare_inputs
    from heads.registry import get_head

    request = request_of(job)
    inputs = prepare_inputs(ctx.workdir, request, embeddings=False)
    recorded = {}
    for name in request.heads:
        recorded[name] = planned_hyperparameters(request, inputs, get_head(name))
        _remember(ctx.folder, _memo_key(request, inputs, name), recorded[name])
    found = _existing(ctx, request, inputs, recorded, runs=None)
    outputs = {key: run_output(runs[-1].path) for key, runs in found.items() if runs}
    for head, test in outputs:
        ctx.progress.note(f"{_output_key(head, test)}: an identical run exists "
                          f"({outputs[head, test]['run_id']}); not fitted again")
    for heads, tests in _missing(request, found, outputs):
        changes = {"heads": heads, **({"test_on": tuple(test or request.dataset for test in tests)}
                                      if request.test_on else {})}
        for result in fit_heads(ctx.workdir, dataclasses.replace(request, **changes), ctx.progress):
            outputs[result.head, result.test_dataset] = run_output(result.path)
    return {"runs": {_output_key(head, test): outputs[head, test] for head, test in found}}


def _existing(ctx, request, inputs, recorded: dict, *, runs) -> dict:
    """(head, test dataset or None) -> identical earlier runs (`benchmark.pipelines.transfer`)."""
    from benchmark.pipelines.transfer import existing_tested_runs, tested_on

    digests = {name: ctx.registered(name)[2] for name in tested_on(request) if name is not None}
    return existing_tested_runs(ctx.workdir, request, inputs, hyperparameters=recorded,
                                runs=runs, test_digests=digests)


def _missing(request, found: dict, outputs: dict) -> list[tuple[tuple, tuple]]:
    """The fits still to do: (heads, the test datasets each of them lacks), heads lacking the same ones together."""
    lacking: dict[tuple, list] = {}
    for head in request.heads:
        tests = tuple(test for (name, test) in found if name == head and (name, test) not in outputs)
        if tests:
            lacking.setdefault(tests, []).append(head)
    return [(tuple(heads), tests) for tests, heads in lacking.items()]


def _output_key(head: str, test: str | None) -> str:
    """A run's key in the job's outputs: the head, and `->DATASET` for a run tested on another dataset."""
    return head if test is None else f"{head}->{test}"


@functools.lru_cache(maxsize=1)
def _heads_code() -> str:
    """A digest of the code that decides what a head records (the heads package, the zero-shot wiring)."""
    import heads
    from benchmark.pipelines import zeroshot

    files = sorted(Path(heads.__file__).parent.glob("*.py")) + [Path(zeroshot.__file__)]
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.name.encode() + path.read_bytes())
    return sha.hexdigest()


def _memo_key(request, inputs, head: str) -> str:
    return digest({"head": head, "params": request.head_params.get(head, {}), "seed": request.seed,
                   "classes": inputs.task.classes, "kind": inputs.task.kind, "store": inputs.store.identity_digest,
                   "promptset": request.promptset, "code": _heads_code(),
                   **({"protect": request.protect} if request.protect else {})})[:32]


def _memo_path(folder, key: str) -> Path:
    return folder.memo_dir / "head-hyperparameters" / f"{key}.json"


def _remembered(folder, key: str) -> dict | None:
    try:
        return json.loads(_memo_path(folder, key).read_text())
    except (OSError, ValueError):
        return None


def _remember(folder, key: str, hyperparameters: dict) -> None:
    from benchmark.core.identity import plain

    write_json(_memo_path(folder, key), plain(hyperparameters))
