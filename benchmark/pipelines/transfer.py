"""Out-of-distribution evaluation: heads fitted on one dataset's store, tested on other datasets' test splits.

    bench fit-heads --model M --task common --train-on mimic --test-on nih,chexpert

Each head is fitted once, on the train split of the training dataset's store with its settings chosen on that
dataset's val split, and then writes one prediction run per test dataset. Such a run's val rows are the
training dataset's val rows (the leaderboard chooses decision thresholds there, as a model deployed at a new
hospital would carry its thresholds over: the new site's labels are not used), and its test rows are the test
dataset's test split, embedded by the same encoder with the same weights. The run record names `dataset`
(fitted on) and `test_dataset`. Naming the training dataset in `--test-on` writes its in-distribution run too,
so that in- and out-of-distribution runs sit side by side in `bench leaderboard`.

Every test dataset must be registered (`bench extract --dataset NAME`) with a store of the model, and the task
must exist there: `common` and `nofinding` exist on NIH, CheXpert and MIMIC alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.predictions import prediction_frame
from benchmark.core.progress import SILENT, Progress
from benchmark.core.workdir import Workdir
from heads.common import macro_auc
from benchmark.pipelines.heads import (
    AlignedData, FitResult, HeadInputs, HeadsRequest, align_task_to_store, build_estimator, fit_and_predict,
    identical_runs, planned_hyperparameters, prepare_inputs, run_record, write_run,
)
from benchmark.pipelines.protect import check_protect


@dataclass
class TestSet:
    """The test split of another registered dataset, in the model's store over that dataset."""

    name: str
    store: object
    aligned: AlignedData
    rows: np.ndarray  # positions of the test rows in aligned.frame
    embeddings: np.ndarray
    manifest_digest: str


def prepare_test_set(workdir: Workdir, request: HeadsRequest, name: str, weights_digest: str) -> TestSet:
    """The task's test rows on dataset `name` and their embeddings (same encoder and weights as the training store)."""
    from benchmark.core.manifest import manifest_digest
    from benchmark.datasets.registry import load_registered
    from benchmark.tasks import build_task
    from cache.ensemble import open_store

    manifest, _ = load_registered(workdir, name)
    digest = manifest_digest(manifest)
    task = build_task(request.task, manifest, seed=request.task_seed_or_seed, **request.task_params)
    store = open_store(workdir, request.model, digest, weights_digest=weights_digest, members=request.ensemble)
    aligned = align_task_to_store(task, store)
    rows = aligned.split("test")
    if rows.size == 0:
        raise BenchError(f"task {request.task!r} has no test images on dataset {name!r}; nothing to test on there")
    return TestSet(name, store, aligned, rows, store.image_embeddings()[aligned.store_rows[rows]], digest)


def fit_transfer(workdir: Workdir, request: HeadsRequest, specs, progress: Progress = SILENT) -> list[FitResult]:
    """Fit each head on `request.dataset` and write one run per dataset of `request.test_on`."""
    others = [name for name in dict.fromkeys(request.test_on) if name != request.dataset]
    inputs = prepare_inputs(workdir, request, progress)
    check_protect(specs, request.protect, inputs)
    weights = inputs.store.attrs.get("weights_digest")
    tests = [prepare_test_set(workdir, request, name, weights) for name in others]
    results = []
    for spec in specs:
        head, chosen = build_estimator(spec, request, inputs)
        started = time.perf_counter()
        probabilities = fit_and_predict(spec, head, inputs)
        seconds = time.perf_counter() - started
        chosen.update(head.chosen_on_val())
        val = inputs.positions["val"]
        val_auc = macro_auc(inputs.aligned.labels(val), probabilities[: val.size])
        if request.dataset in request.test_on:
            record = run_record(request, inputs, spec, head.recorded_params(), chosen, seconds)
            frame = prediction_frame(inputs.aligned.frame[inputs.evaluated], probabilities, inputs.task.classes)
            results.append(write_run(workdir, request, record, frame, spec=spec, seconds=seconds, val_macro_auc=val_auc))
        for test in tests:
            p_test = predict_test_set(spec, head, chosen, inputs, test)
            frame = _frame(inputs, probabilities[: val.size], test, p_test)
            record = run_record(request, inputs, spec, head.recorded_params(), chosen, seconds)
            record.test_dataset = test.name
            record.rows = {"train": int(inputs.positions["train"].size), "val": int(val.size), "test": int(test.rows.size)}
            record.details.update({"test_manifest_digest": test.manifest_digest, "test_store_identity": test.store.identity_digest,
                                   "test_store_path": str(test.store.path), "test_excluded_images": len(test.aligned.excluded),
                                   "val_rows_from": request.dataset, "test_rows_from": test.name})
            results.append(write_run(workdir, request, record, frame, spec=spec, seconds=seconds, val_macro_auc=val_auc))
        progress.note(f"{spec.name}: fitted on {request.dataset}, tested on {', '.join(request.test_on)}")
    return results


def predict_test_set(spec, head, chosen: dict, inputs: HeadInputs, test: TestSet) -> np.ndarray:
    """Probabilities of the test set's images. A zero-shot head with GLoRIA's local similarity reads the local
    features of the test dataset's store (the prompts stay those it was fitted with)."""
    if "test_groups" in spec.needs:
        codes = inputs.groups.encode(test.aligned.frame[test.rows], dataset=test.name)
        return head.predict_proba(test.embeddings, groups=codes)
    if spec.kind != "zeroshot":
        return head.predict_proba(test.embeddings)
    if getattr(head, "similarity", None) is not None:
        from benchmark.pipelines.promptsets import prompt_text
        from benchmark.pipelines.zeroshot import gloria_similarity_of

        text = prompt_text(inputs.workdir, inputs.store, chosen.get("promptset_name", chosen["promptset"]), classes=inputs.task.classes).fields
        head.similarity = gloria_similarity_of(test.store, text)
        try:
            return head.predict_proba(test.embeddings, rows=test.aligned.store_rows[test.rows])
        finally:
            head.similarity = gloria_similarity_of(inputs.store, text)
    return head.predict_proba(test.embeddings, rows=test.aligned.store_rows[test.rows])


def _frame(inputs: HeadInputs, p_val: np.ndarray, test: TestSet, p_test: np.ndarray) -> pl.DataFrame:
    """The training dataset's val rows and the test dataset's test rows in one prediction frame."""
    classes = inputs.task.classes
    val = prediction_frame(inputs.aligned.frame[inputs.positions["val"]], p_val, classes)
    tested = prediction_frame(test.aligned.frame[test.rows], p_test, classes)
    clash = set(val["image_id"].to_list()) & set(tested["image_id"].to_list())
    if clash:
        raise BenchError(f"image ids {sorted(clash)[:3]} are in both {inputs.task.name} datasets; they cannot share a prediction file")
    return pl.concat([val, tested], how="diagonal_relaxed")


def tested_on(request: HeadsRequest) -> tuple[str | None, ...]:
    """The runs a request writes per head, by test dataset: None for the training dataset (in distribution)."""
    names = dict.fromkeys(request.test_on or (request.dataset,))
    return tuple(None if name == request.dataset else name for name in names)


def existing_tested_runs(workdir: Workdir, request: HeadsRequest, inputs: HeadInputs, *, hyperparameters: dict,
                         runs: list | None, test_digests: dict) -> dict[tuple[str, str | None], list]:
    """(head, test dataset or None) -> the earlier runs identical to the one `fit_heads` would write (oldest
    first): same as `existing_runs`, per test dataset, and an out-of-distribution run only if it was tested on
    the test dataset's current manifest (`test_digests`: name -> manifest digest). `runs`: the task's runs, if known."""
    from benchmark.core.runs import list_runs
    from heads.registry import get_head

    runs = list_runs(workdir, inputs.task.name) if runs is None else runs

    found = {}
    for name in request.heads:
        spec = get_head(name)
        recorded = hyperparameters.get(name)
        if recorded is None:
            recorded = planned_hyperparameters(request, inputs, spec)
        record = run_record(request, inputs, spec, recorded, {}, 0.0)
        for test in tested_on(request):
            record.test_dataset = test
            same = identical_runs(workdir, record.task, record, runs=runs)
            found[name, test] = [run for run in same if test is None
                                 or run.record.details.get("test_manifest_digest") == test_digests[test]]
    return found
