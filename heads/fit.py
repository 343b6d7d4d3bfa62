"""Fit heads off an embedding store and write one prediction run per head.

    registered manifest -> task -> embedding store (model, manifest digest) -> rows aligned by image_id
    -> each head fitted on train (val for selection) -> predictions for val + test -> runs/<task>/<run-id>/

The heads never open an image. Images the store marks as excluded (undecodable) are left out of the task
and counted in every run's metadata; a task image missing from the store is an error.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError

HEADS = ("linear", "seed-linear", "mlp", "zeroshot")
DEFAULT_HEADS = ("linear", "mlp", "zeroshot")
RANDOM_INIT = "random-init"


@dataclass
class HeadOptions:
    """User-facing hyperparameters of the heads (None keeps each head's default)."""

    Cs: tuple[float, ...] | None = None
    scoring: str = "loss"
    mlp: dict = field(default_factory=dict)
    seed_linear: dict = field(default_factory=dict)
    promptset: str | None = None
    zeroshot_temperature: str | None = None  # None or "fit"


@dataclass(frozen=True)
class FitResult:
    head: str
    path: Path
    run_id: str
    seconds: float
    chosen: dict
    val_macro_auc: float
    random_init: bool = False
    replaced: str = ""
    earlier_identical: tuple[str, ...] = ()


@dataclass
class AlignedData:
    """Task rows that have embeddings, with their store rows."""

    task: object
    frame: object  # the task frame without excluded images (polars)
    store_rows: np.ndarray  # store row of each frame row
    excluded: list[str]  # image ids the store could not embed

    def split(self, name: str) -> np.ndarray:
        return np.flatnonzero((self.frame["split"] == name).to_numpy())

    def labels(self, positions: np.ndarray) -> np.ndarray:
        matrix = self.frame[positions].select([f"y_{c}" for c in self.task.classes]).to_numpy().astype(np.int64)
        return matrix.argmax(axis=1) if self.task.kind == "single" else matrix


def align_task_to_store(task, store) -> AlignedData:
    """Match task rows to store rows by image_id; BenchError for images the store lacks."""
    import polars as pl

    position = {image_id: row for row, image_id in enumerate(store.image_ids)}
    image_ids = task.frame["image_id"].to_list()
    missing = [image_id for image_id in image_ids if image_id not in position]
    if missing:
        raise BenchError(
            f"{len(missing)} image(s) of task {task.name!r} are not in the embedding store {store.path} "
            f"(first: {missing[:3]}); the store was built from another manifest. Run `bench extract` again "
            f"for this dataset."
        )
    rows = np.fromiter((position[image_id] for image_id in image_ids), dtype=np.int64, count=len(image_ids))
    excluded_mask = store.excluded[rows]
    excluded = [image_ids[i] for i in np.flatnonzero(excluded_mask)]
    frame = task.frame.filter(pl.Series(~excluded_mask))
    return AlignedData(task=task, frame=frame, store_rows=rows[~excluded_mask], excluded=excluded)


def build_head(name: str, kind: str, n_classes: int, seed: int, options: HeadOptions, store, aligned: AlignedData):
    """A fresh estimator for head `name`."""
    if name == "linear":
        from heads.linear import DEFAULT_CS, LinearProbe

        return LinearProbe(Cs=options.Cs or DEFAULT_CS, scoring=options.scoring, random_state=seed, n_classes=n_classes)
    if name == "mlp":
        from heads.mlp import MLPHead

        return MLPHead(random_state=seed, n_classes=n_classes, **options.mlp)
    if name == "seed-linear":
        from heads.seed_linear import SeedLinearProbe

        return SeedLinearProbe(random_state=seed, n_classes=n_classes, **options.seed_linear)
    if name == "zeroshot":
        return build_zeroshot(store, aligned.task.classes, kind, options)
    raise BenchError(f"unknown head {name!r}; choose from {', '.join(HEADS)}")


def build_zeroshot(store, classes, kind: str, options: HeadOptions):
    """Zero-shot head from the store's prompt-set text embeddings, in the encoder family's style."""
    from heads.zeroshot import STYLE_ENSEMBLE, STYLE_LOGIT_SCALE, ZeroShotHead

    if not store.promptsets:
        raise BenchError(f"the store {store.path} holds no prompt text embeddings; zero-shot needs them (run `bench extract` again)")
    promptset = options.promptset or ("default" if "default" in store.promptsets else store.promptsets[0])
    text = store.text(promptset)
    covered = set(text["class_name"].tolist())
    missing = [c for c in classes if c not in covered]
    if missing:
        raise BenchError(
            f"prompt set {promptset!r} of {store.path} has no prompts for {missing}; edit the prompt file "
            f"(extractors/prompts/) and run `bench extract` again"
        )
    encoder = store.identity.get("encoder", {})
    style = encoder.get("prompt_style", "clip")
    similarity, chunk_rows = None, 65536
    if store.has_local and "words" in text:
        similarity, chunk_rows = _gloria_similarity(store, text), 256
    head = ZeroShotHead(
        text["embedding"],
        text["class_name"],
        classes,
        polarity=text.get("polarity"),
        ensemble=encoder.get("extra", {}).get("prompt_ensemble") or STYLE_ENSEMBLE.get(style, "prototype"),
        logit_scale=STYLE_LOGIT_SCALE.get(style, 100.0),
        temperature=options.zeroshot_temperature,
        kind=kind,
        similarity=similarity,
        chunk_rows=chunk_rows,
    )
    head.promptset_ = promptset
    head.style_ = style
    return head


def _gloria_similarity(store, text):
    """GLoRIA's global + local image-prompt similarity, reading local features for the given store rows."""
    import torch

    from extractors.families.gloria import gloria_similarity

    text_global = torch.from_numpy(text["embedding"])
    words = torch.from_numpy(text["words"])
    mask = torch.from_numpy(text["word_mask"])

    def similarity(image_global, rows):
        local = torch.from_numpy(store.image_local(rows).astype(np.float32))
        return gloria_similarity(image_global, local, text_global, words, mask)

    return similarity


def chosen_values(name: str, head) -> dict:
    """What a head picked on val (recorded as `chosen`)."""
    if name == "linear":
        return {"C": head.C_, "val_score_by_C": {str(c): s for c, s in head.scores_.items()}, "scoring": head.scoring}
    if name in ("mlp", "seed-linear"):
        return {"best_epoch": head.best_epoch_, "epochs_run": head.epochs_run_, "val_loss": head.val_loss_[head.best_epoch_ - 1]}
    if name == "zeroshot":
        chosen = {"promptset": head.promptset_, "prompt_style": head.style_, "pairs": head.uses_pairs_}
        if head.temperature == "fit":
            chosen["temperature"] = head.temperature_
            chosen["temperature_fitted_on"] = "val"
        return chosen
    return {}


def identical_runs(workdir, task_name: str, metadata: dict) -> list:
    """Earlier runs with the same encoder, weights, method, seed, store, task parameters and hyperparameters."""
    from benchmark.predictions import list_runs

    keys = ("encoder", "weights_digest", "method", "seed", "store_identity", "task_params", "hyperparameters")
    wanted = json.loads(json.dumps({key: metadata.get(key) for key in keys}))
    return [
        run
        for run in list_runs(workdir, task_name)
        if not run.problem and all(run.metadata.get(key) == wanted[key] for key in keys)
    ]


def fit_heads(
    workdir,
    *,
    model: str,
    task: str,
    heads=DEFAULT_HEADS,
    seed: int = 0,
    dataset: str = "nih",
    task_params: dict | None = None,
    weights_digest: str | None = None,
    options: HeadOptions | None = None,
    force: bool = False,
    report=None,
) -> list[FitResult]:
    """Fit each head and write one prediction run per head; returns what was written.

    `report(message)` receives progress lines. With `force`, the newest identical earlier run of a head is
    replaced (same run id); without it, a new run id is always used and identical earlier runs are named.
    """
    from benchmark.datasets.manifest import manifest_digest
    from benchmark.datasets.registry import load_registered
    from benchmark.predictions import new_run_path, package_versions, prediction_frame, write_predictions
    from benchmark.tasks import build_task
    from cache.embeddings import EmbeddingStore, find_store
    from heads.common import macro_auc

    options = options or HeadOptions()
    report = report or (lambda message: None)
    unknown = [h for h in heads if h not in HEADS]
    if unknown or not heads:
        raise BenchError(f"unknown head(s) {unknown or heads}; choose from {', '.join(HEADS)}")
    manifest, _ = load_registered(workdir, dataset)
    digest = manifest_digest(manifest)
    built = build_task(task, manifest, seed=seed, **(task_params or {}))
    if not (Path(workdir) / "stores" / model).is_dir():
        from extractors.registry import REGISTRY, get_spec

        if model not in REGISTRY:
            get_spec(model)  # a misspelt name: list the known encoders rather than suggest extracting it
    store = EmbeddingStore.open(find_store(workdir, model, digest, weights_digest=weights_digest))
    aligned = align_task_to_store(built, store)
    if aligned.excluded:
        report(f"{len(aligned.excluded)} task image(s) excluded by the store (undecodable), left out: {aligned.excluded[:3]}")
    train, val, test = (aligned.split(s) for s in ("train", "val", "test"))
    for name, positions in (("train", train), ("val", val), ("test", test)):
        if positions.size == 0:
            raise BenchError(f"task {task!r} has no {name} images after alignment; use a larger dataset or other split fractions")
    embeddings = store.image_embeddings()[aligned.store_rows]  # one sequential read, then numpy indexing
    weights_tag = store.weights_tag
    n_classes = len(built.classes)
    evaluated = np.concatenate([val, test])
    rows_out = aligned.frame[evaluated]

    results = []
    for name in heads:
        head = build_head(name, built.kind, n_classes, seed, options, store, aligned)
        started = time.perf_counter()
        if name == "zeroshot":
            head.fit(embeddings[val], aligned.labels(val), rows=aligned.store_rows[val])
            probabilities = head.predict_proba(embeddings[evaluated], rows=aligned.store_rows[evaluated])
        else:
            head.fit(embeddings[train], aligned.labels(train), embeddings[val], aligned.labels(val))
            probabilities = head.predict_proba(embeddings[evaluated])
        seconds = time.perf_counter() - started
        frame = prediction_frame(rows_out, probabilities, built.classes)
        metadata = {
            "encoder": model,
            "weights_tag": weights_tag,
            "weights_digest": store.attrs.get("weights_digest", ""),
            "random_init": weights_tag == RANDOM_INIT,
            "method": name,
            "task": built.name,
            "task_kind": built.kind,
            "task_params": built.params,
            "dataset": dataset,
            "seed": seed,
            "hyperparameters": recorded_hyperparameters(head),
            "chosen": chosen_values(name, head),
            "store_identity": store.identity_digest,
            "store_path": str(store.path),
            "manifest_digest": digest,
            "rows": {"train": int(train.size), "val": int(val.size), "test": int(test.size)},
            "excluded_images": len(aligned.excluded),
            "fit_seconds": round(seconds, 3),
            "versions": {**package_versions(), "store": store.versions},
        }
        earlier = identical_runs(workdir, built.name, metadata)
        replaced = ""
        if force and earlier:
            path = earlier[-1].path
            replaced = earlier[-1].run_id
            earlier = earlier[:-1]
        else:
            path = new_run_path(workdir, built.name, model, name)
        metadata["run_id"] = path.parent.name
        write_predictions(path, frame, metadata, force=bool(replaced))
        val_auc = macro_auc(aligned.labels(val), probabilities[: val.size])
        results.append(
            FitResult(
                head=name,
                path=path,
                run_id=path.parent.name,
                seconds=seconds,
                chosen=metadata["chosen"],
                val_macro_auc=val_auc,
                random_init=metadata["random_init"],
                replaced=replaced,
                earlier_identical=tuple(run.run_id for run in earlier),
            )
        )
        report(f"{name}: {path.parent.name} ({seconds:.1f} s)")
    return results


def recorded_hyperparameters(head) -> dict:
    """The hyperparameters a run records: the estimator's parameters, or the zero-shot head's summary."""
    return head.summary() if hasattr(head, "summary") else head.get_params()

