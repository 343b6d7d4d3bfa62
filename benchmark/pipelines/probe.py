"""Demographic-encoding probes: how much of a patient attribute an encoder's frozen embeddings carry.

    record, path = run_probe(workdir, ProbeRequest(model="tiny-clip", attribute="sex"))

Every image of the registered dataset with an embedding and a known value of the attribute; the manifest's
patient-disjoint train / val / test splits. A linear probe (`heads.linear.LinearProbe`, C chosen on val by
log-loss) predicts the attribute's level (sex F / M, age < 60 / >= 60, race, insurance, or an intersection such
as sex*age) from the embedding; its test AUC (two levels) or macro one-vs-rest AUC (more) comes with a
patient-clustered bootstrap CI (`fairness.encoding`). Rows with an unknown value are left out and counted. An
attribute the dataset does not record (race on NIH) is refused in one line. Glocker et al. (Radiology: AI 2023)
and Gichoya et al. (Lancet Digital Health 2022) show such probes on real chest X-ray encoders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress
from benchmark.core.schema import RANDOM_INIT
from benchmark.core.workdir import Workdir


@dataclass(frozen=True)
class ProbeRequest:
    """What `bench probe` asks for."""

    model: str
    attribute: str
    dataset: str = "nih"
    seed: int = 0
    n_boot: int = 1000
    weights_digest: str | None = None


def probe_inputs(workdir: Workdir, request: ProbeRequest, progress: Progress = SILENT):
    """(store, the manifest rows with embeddings, their embeddings, the attribute's groups)."""
    from benchmark.core.manifest import manifest_digest
    from benchmark.datasets.registry import load_registered
    from benchmark.pipelines.heads import align_task_to_store, fresh_store
    from benchmark.pipelines.protect import protected_groups
    from cache.embeddings import find_stores

    manifest, root = load_registered(workdir, request.dataset)
    protected_groups(manifest, request.attribute, dataset=request.dataset, option="--attribute")  # refused first
    candidates = find_stores(workdir, request.model, manifest_digest(manifest), weights_digest=request.weights_digest)
    store = fresh_store(candidates, manifest, root, progress)
    aligned = align_task_to_store(SimpleNamespace(frame=manifest, name=request.dataset), store)
    frame = aligned.frame
    groups = protected_groups(frame, request.attribute, dataset=request.dataset, option="--attribute")
    return store, frame, store.image_embeddings()[aligned.store_rows], groups


def run_probe(workdir, request: ProbeRequest, progress: Progress = SILENT) -> tuple[dict, Path]:
    """Fit the probe, measure its test AUC with a CI, write the record (`benchmark.core.probes`)."""
    from benchmark.core.probes import write_probe
    from fairness.encoding import attribute_auc
    from heads.linear import LinearProbe

    workdir = Workdir.of(workdir)
    store, frame, embeddings, groups = probe_inputs(workdir, request, progress)
    known = np.array([level != "unknown" for level in groups.levels])[groups.codes]
    split = frame["split"].to_numpy()
    rows = {name: np.flatnonzero(known & (split == name)) for name in ("train", "val", "test")}
    for name, positions in rows.items():
        present = np.unique(groups.codes[positions]).size
        if present < 2:
            raise BenchError(f"the {name} split of {request.dataset} has {present} {request.attribute} group(s) with "
                             "images; a probe needs two or more in every split (use a larger dataset)")
    levels = int(groups.codes[known].max()) + 1
    started = time.perf_counter()
    probe = LinearProbe(random_state=request.seed, n_classes=levels)
    probe.fit(embeddings[rows["train"]], groups.codes[rows["train"]], embeddings[rows["val"]], groups.codes[rows["val"]])
    test = rows["test"]
    auc = attribute_auc(levels=groups.codes[test], probabilities=probe.predict_proba(embeddings[test]),
                        patient_ids=frame["patient_id"].to_numpy()[test], n_boot=request.n_boot, seed=request.seed)
    record = _record(request, store, groups, rows, known, auc, probe, time.perf_counter() - started,
                     frame["patient_id"].to_numpy()[test])
    return record, write_probe(workdir, record)


def _record(request, store, groups, rows, known, auc, probe, seconds, test_patients) -> dict:
    return {
        "encoder": request.model, "dataset": request.dataset, "attribute": request.attribute,
        "attribute_name": request.attribute.replace("*", "_"), "levels": [lvl for lvl in groups.levels if lvl != "unknown"],
        "seed": request.seed, "n_boot": request.n_boot, "store_identity": store.identity_digest,
        "weights_tag": store.weights_tag, "random_init": store.weights_tag == RANDOM_INIT,
        "rows": {name: int(positions.size) for name, positions in rows.items()},
        "test_patients": int(np.unique(test_patients).size), "unknown_left_out": int((~known).sum()),
        "auc": {"value": auc.value, "ci": list(auc.ci)}, "C": probe.C_, "fit_seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bootstrap": "patient-clustered, stratified by the level of each patient's first test image, percentile CI",
    }
