"""Heads off the cache: fit every requested head on a store and write one prediction run per head.

    registered manifest -> task -> embedding store (model, manifest digest) -> rows aligned by image_id
    -> each head fitted on train (val for selection) -> predictions for val + test -> runs/<task>/<run-id>/

The heads never open an image. Images the store marks as excluded (undecodable) are left out of the task
and counted in every run's record; a task image missing from the store is an error. Which heads exist, and
how each is driven, is the heads registry's business (`heads.registry`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.identity import plain
from benchmark.core.progress import SILENT, Progress
from benchmark.core.runs import RunRecord, list_runs, new_run_path, write_predictions
from benchmark.core.predictions import prediction_frame
from benchmark.core.schema import MASKED, RANDOM_INIT, SPLITS, label_column
from benchmark.core.versions import package_versions
from benchmark.core.workdir import Workdir
from benchmark.pipelines.protect import check_protect
from cache.ensemble import StoreEnsemble, open_store
from heads.registry import DEFAULT_HEADS, HeadSpec, get_head


@dataclass(frozen=True)
class HeadsRequest:
    """What `bench fit-heads` asks for. `head_params`: head name -> estimator parameters."""

    model: str
    task: str
    heads: tuple[str, ...] = DEFAULT_HEADS
    seed: int = 0
    dataset: str = "nih"
    task_params: dict = field(default_factory=dict)
    weights_digest: str | None = None
    ensemble: tuple[str, ...] = ()
    """The weights digests of an ensemble's members (two or more; `benchmark.pipelines.ensemble`), else empty."""
    head_params: dict = field(default_factory=dict)
    promptset: str | None = None
    force: bool = False
    test_on: tuple[str, ...] = ()
    """Registered datasets to test on (out of distribution; `benchmark.pipelines.transfer`); empty: `dataset`."""
    task_seed: int | None = None
    """Seed of the task's subset and split (None: `seed`, which then also seeds the heads)."""
    experiment: str | None = None
    """The `bench run` experiment the runs belong to (recorded in each run; not part of its identity)."""
    protect: str | None = None
    """The protected attribute of the mitigation heads (`--protect sex|age|race|insurance|sex*age|...`)."""

    @property
    def task_seed_or_seed(self) -> int:
        return self.seed if self.task_seed is None else self.task_seed


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
    test_dataset: str | None = None


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
        """Class indices (single-label) or 0/1 [n, C] with MASKED (-1) for a masked label (multi-label)."""
        import polars as pl

        columns = [pl.col(label_column(c)).fill_null(MASKED) for c in self.task.classes]
        matrix = self.frame[positions].select(columns).to_numpy().astype(np.int64)
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


def fresh_store(paths: list, manifest, root, progress: Progress = SILENT):
    """The newest candidate store whose images are unchanged (an older one can match after an image was put
    back); when none does, the error of the one with the fewest changed images (the store of these files, not one
    made from another folder)."""
    from cache.embeddings import EmbeddingStore

    stale = []
    for path in paths:
        store = EmbeddingStore.open(path)
        changed = changed_images(store, manifest, root, progress)
        if not changed:
            return store
        stale.append((len(changed), store, changed))
    if not stale:
        raise BenchError("no embedding store to check; run `bench extract` first")
    count, store, changed = min(stale, key=lambda item: item[0])
    raise BenchError(STALE.format(count=count, store=store.path, example=changed[0]))


STALE = ("{count} image(s) changed since {store} was extracted (e.g. {example}); its embeddings would be stale. Run "
         "`bench extract` again (only the changed images are decoded again).")


def changed_images(store, manifest, root, progress: Progress = SILENT) -> list[str]:
    """The image files that changed since `store` embedded them ([] also when they cannot be checked: noted)."""
    from cache.fingerprints import changed_rows

    if store.fingerprints is None:
        progress.note(f"{store.path.name} records no image fingerprints (made by an earlier version); run "
                      "`bench extract` again to be sure no image changed since")
        return []
    if not Path(root).is_dir():
        progress.note(f"the dataset folder {root} is not here: cannot check that its images are unchanged")
        return []
    by_id = dict(zip(manifest["image_id"].to_list(), manifest["path"].to_list()))
    paths = [str(Path(root) / by_id.get(image_id, image_id)) for image_id in store.image_ids]
    return [paths[row] for row in changed_rows(paths, store.fingerprints)]


@dataclass
class HeadInputs:
    """Everything the heads of one request share: the task, the store, aligned rows and their embeddings."""

    task: object
    store: object
    aligned: AlignedData
    embeddings: np.ndarray
    positions: dict  # split -> positions into aligned.frame
    manifest_digest: str
    groups: object = None  # benchmark.pipelines.protect.ProtectedGroups of `--protect`, over aligned.frame
    workdir: object = None  # where extra prompt sets' text embeddings are cached

    @property
    def evaluated(self) -> np.ndarray:
        return np.concatenate([self.positions["val"], self.positions["test"]])


def prepare_inputs(workdir: Workdir, request: HeadsRequest, progress: Progress = SILENT, *,
                   embeddings: bool = True, manifest=None) -> HeadInputs:
    """Registered dataset -> task -> the model's store -> aligned rows and embeddings (one sequential read).

    `embeddings=False` leaves them unread (`HeadInputs.embeddings` is None): enough to say what a run would
    record (`planned_record`). `manifest`: the registered manifest when the caller has already read it."""
    from benchmark.core.manifest import manifest_digest
    from benchmark.datasets.registry import load_registered, registered_source
    from benchmark.tasks import build_task

    if manifest is None:
        manifest, root = load_registered(workdir, request.dataset)
    else:
        root = (registered_source(workdir, request.dataset) or {}).get("root", "")
    digest = manifest_digest(manifest)
    task = build_task(request.task, manifest, seed=request.task_seed_or_seed, **request.task_params)
    if not workdir.model_stores_dir(request.model).is_dir():
        from extractors.registry import REGISTRY, get_spec

        if request.model not in REGISTRY:
            get_spec(request.model)  # a misspelt name: list the known encoders rather than suggest extracting it
    fresh = (lambda candidates: fresh_store(candidates, manifest, root, progress)) if embeddings else None
    store = open_store(workdir, request.model, digest, weights_digest=request.weights_digest,
                       members=request.ensemble, choose=fresh)
    aligned = align_task_to_store(task, store)
    if aligned.excluded:
        progress.note(f"{len(aligned.excluded)} task image(s) excluded by the store (undecodable), left out: "
                      f"{aligned.excluded[:3]}")
    positions = {split: aligned.split(split) for split in SPLITS}
    note_masked(aligned, positions, progress)
    for split, rows in positions.items():
        if rows.size == 0:
            raise BenchError(f"task {request.task!r} has no {split} images after alignment; use a larger dataset or "
                             "other split fractions")
    vectors = store.image_embeddings()[aligned.store_rows] if embeddings else None
    groups = None
    if request.protect:
        from benchmark.pipelines.protect import protected_groups

        groups = protected_groups(aligned.frame, request.protect, dataset=request.dataset)
    return HeadInputs(task, store, aligned, vectors, positions, digest, groups, Workdir.of(workdir))


def note_masked(aligned: AlignedData, positions: dict, progress: Progress = SILENT) -> None:
    """Say how many val / test images have a masked label (multi-label): they are kept, each masked entry left out
    of its class's figures by the leaderboard (and of the heads' losses and val scores)."""
    if aligned.task.kind != "multi":
        return
    counts = {split: int((aligned.labels(positions[split]) == MASKED).any(axis=1).sum()) for split in ("val", "test")}
    if any(counts.values()):
        progress.note(f"{counts['val']} val and {counts['test']} test image(s) have a masked label (uncertain under "
                      "--uncertain ignore): kept, each masked entry left out of its class's loss and figures only")


def fit_heads(workdir, request: HeadsRequest, progress: Progress = SILENT) -> list[FitResult]:
    """Fit each requested head and write one prediction run per head; returns what was written.

    With `request.force`, the newest identical earlier run of a head is replaced (same run id); without it,
    a new run id is always used and identical earlier runs are named."""
    workdir = Workdir.of(workdir)
    specs = [get_head(name) for name in request.heads]
    from benchmark.pipelines.zeroshot import heads_for_encoder

    specs = heads_for_encoder(request.model, specs, defaults=tuple(request.heads) == DEFAULT_HEADS, progress=progress)
    if not specs:
        raise BenchError("no heads asked for; choose from the heads registry (see `bench fit-heads --help`)")
    if request.ensemble:
        progress.note(f"{request.model}: an ensemble of {len(request.ensemble)} checkpoints; each head is fitted on "
                      "every member's embeddings and its probabilities are the mean of the members'")
    if request.test_on:
        from benchmark.pipelines.transfer import fit_transfer

        return fit_transfer(workdir, request, specs, progress)
    inputs = prepare_inputs(workdir, request, progress)
    check_protect(specs, request.protect, inputs)
    if request.protect and not any(spec.mitigation for spec in specs):
        progress.note(f"--protect {request.protect}: none of these heads mitigates, so the attribute is not used "
                      "(mitigation heads: docs/mitigation.md)")
    results = []
    for spec in specs:
        result = fit_one(workdir, request, inputs, spec)
        progress.note(f"{spec.name}: {result.run_id} ({result.seconds:.1f} s)")
        results.append(result)
    return results


def fit_one(workdir: Workdir, request: HeadsRequest, inputs: HeadInputs, spec: HeadSpec) -> FitResult:
    """Fit one head, predict val + test, and write its run."""
    from heads.common import macro_auc

    head, chosen = build_estimator(spec, request, inputs)
    started = time.perf_counter()
    probabilities = fit_and_predict(spec, head, inputs)
    seconds = time.perf_counter() - started
    chosen.update(head.chosen_on_val())
    record = run_record(request, inputs, spec, head.recorded_params(), chosen, seconds)
    frame = prediction_frame(inputs.aligned.frame[inputs.evaluated], probabilities, inputs.task.classes)
    val = inputs.positions["val"]
    return write_run(workdir, request, record, frame, spec=spec, seconds=seconds,
                     val_macro_auc=macro_auc(inputs.aligned.labels(val), probabilities[: val.size]))


def write_run(workdir: Workdir, request: HeadsRequest, record: RunRecord, frame, *, spec: HeadSpec, seconds: float,
              val_macro_auc: float) -> FitResult:
    """Write one run's predictions under a new run id (or the identical run it replaces with --force)."""
    path, replaced, earlier = _run_path(workdir, request, record)
    record.run_id = path.parent.name
    write_predictions(path, frame, record, force=bool(replaced))
    return FitResult(head=spec.name, path=path, run_id=record.run_id, seconds=seconds, chosen=record.chosen,
                     val_macro_auc=val_macro_auc, random_init=bool(record.random_init), replaced=replaced,
                     earlier_identical=tuple(run.run_id for run in earlier), test_dataset=record.test_dataset)


def build_estimator(spec: HeadSpec, request: HeadsRequest, inputs: HeadInputs):
    """(a fresh estimator for `spec`, what the pipeline chose for it); zero-shot reads the store's prompts. On an
    ensemble, one estimator per member, their probabilities averaged (`heads.member_average`)."""
    if isinstance(inputs.store, StoreEnsemble):
        from heads.member_average import MemberAverage

        built = [build_for_store(spec, request, store, inputs.task, inputs.workdir) for store in inputs.store.members]
        return MemberAverage([head for head, _ in built], widths=inputs.store.widths), built[0][1]
    return build_for_store(spec, request, inputs.store, inputs.task, inputs.workdir)


def build_for_store(spec: HeadSpec, request: HeadsRequest, store, task, workdir):
    """`build_estimator` for one store (one checkpoint)."""
    params = dict(request.head_params.get(spec.name, {}))
    if spec.kind == "zeroshot":
        from benchmark.pipelines.promptsets import prompt_text
        from benchmark.pipelines.zeroshot import build_zeroshot, refuse_vision_only

        refuse_vision_only(store.model)
        text = prompt_text(workdir, store, request.promptset, classes=task.classes)
        return build_zeroshot(store, task.classes, task.kind, text=text, **params)
    return spec.create(random_state=request.seed, n_classes=len(task.classes), **params), {}


def fit_and_predict(spec: HeadSpec, head, inputs: HeadInputs) -> np.ndarray:
    """Fit (trained heads: on train, selecting on val; zero-shot: val only) and predict val + test."""
    train, val = inputs.positions["train"], inputs.positions["val"]
    labels, embeddings, rows = inputs.aligned.labels, inputs.embeddings, inputs.aligned.store_rows
    evaluated = inputs.evaluated
    if spec.kind == "zeroshot":
        head.fit(embeddings[val], labels(val), rows=rows[val])
        return head.predict_proba(embeddings[evaluated], rows=rows[evaluated])
    from benchmark.pipelines.protect import group_arguments

    head.fit(embeddings[train], labels(train), embeddings[val], labels(val),
             **group_arguments(spec, inputs.groups, train, val))
    if "test_groups" not in spec.needs:
        return head.predict_proba(embeddings[evaluated])
    return head.predict_proba(embeddings[evaluated], groups=inputs.groups.codes[evaluated])


def run_record(request: HeadsRequest, inputs: HeadInputs, spec: HeadSpec, hyperparameters: dict, chosen: dict,
               seconds: float) -> RunRecord:
    """The record of one head's run (`hyperparameters`: what the estimator records, `recorded_params()`; a
    mitigation head's also name the protected attribute)."""
    from benchmark.pipelines.protect import mitigation_details

    store, task = inputs.store, inputs.task
    mitigation = mitigation_details(spec, inputs.groups, inputs.positions)
    if mitigation:
        hyperparameters = {**hyperparameters, "protect": inputs.groups.attribute}
    if "decision_columns" in chosen:
        chosen = {**chosen, "decision_classes": [task.classes[c] for c in chosen["decision_columns"]],
                  "unconstrained_class_names": [task.classes[c] for c in chosen.get("unconstrained_classes", ())]}
    return RunRecord(
        run_id="",
        encoder=request.model,
        method=spec.name,
        task=task.name,
        task_kind=task.kind,
        classes=task.classes,
        seed=request.seed,
        weights_tag=store.weights_tag,
        weights_digest=store.attrs.get("weights_digest", ""),
        random_init=store.weights_tag == RANDOM_INIT,
        ensemble=store.member_records() if isinstance(store, StoreEnsemble) else [],
        dataset=request.dataset,
        experiment=request.experiment,
        task_params=task.params,
        hyperparameters=hyperparameters,
        chosen=chosen,
        manifest_digest=inputs.manifest_digest,
        store_identity=store.identity_digest,
        rows={split: int(rows.size) for split, rows in inputs.positions.items()},
        excluded_images=len(inputs.aligned.excluded),
        versions={**package_versions(), "store": store.versions},
        details={"store_path": str(store.path), "fit_seconds": round(seconds, 3), **mitigation,
                 **ensemble_details(store)},
    )


def ensemble_details(store) -> dict:
    """An ensemble run's member store files (its record lists the members themselves)."""
    if not isinstance(store, StoreEnsemble):
        return {}
    return {"store_paths": [str(member.path) for member in store.members]}


IDENTICAL_FIELDS = ("encoder", "weights_digest", "method", "seed", "store_identity", "task_params", "hyperparameters",
                    "test_dataset")


def identical_runs(workdir, task_name: str, record: RunRecord, *, runs=None) -> list:
    """Earlier runs with the same encoder, weights, method, seed, store, task parameters, hyperparameters and
    test dataset (oldest first). `runs`: the task's `list_runs` when the caller has it already."""
    wanted = {key: plain(getattr(record, key)) for key in IDENTICAL_FIELDS}
    return [
        run for run in (list_runs(workdir, task_name) if runs is None else runs)
        if run.record is not None and all(plain(getattr(run.record, key)) == wanted[key] for key in IDENTICAL_FIELDS)
    ]


def planned_hyperparameters(request: HeadsRequest, inputs: HeadInputs, spec: HeadSpec) -> dict:
    """What the estimator of `spec` would record as its hyperparameters (builds it, unfitted)."""
    return build_estimator(spec, request, inputs)[0].recorded_params()


def existing_runs(workdir, request: HeadsRequest, inputs: HeadInputs | None = None, *,
                  hyperparameters: dict | None = None, runs=None) -> dict[str, list]:
    """For each requested head, the earlier runs identical to the one `fit_heads` would write (oldest first;
    empty when there is none): what a resumed plan need not fit again. `hyperparameters` (head -> what its
    estimator records) spares building the estimators; `runs`: the task's `list_runs`, when known."""
    workdir = Workdir.of(workdir)
    inputs = inputs or prepare_inputs(workdir, request, embeddings=False)
    runs = list_runs(workdir, inputs.task.name) if runs is None else runs
    found = {}
    for name in request.heads:
        spec = get_head(name)
        recorded = (hyperparameters or {}).get(name)
        if recorded is None:
            recorded = planned_hyperparameters(request, inputs, spec)
        record = run_record(request, inputs, spec, recorded, {}, 0.0)
        found[name] = identical_runs(workdir, record.task, record, runs=runs)
    return found


def _run_path(workdir: Workdir, request: HeadsRequest, record: RunRecord) -> tuple[Path, str, list]:
    """(where the run goes, the run id it replaces or "", identical earlier runs that stay)."""
    earlier = identical_runs(workdir, record.task, record)
    if request.force and earlier:
        return earlier[-1].path, earlier[-1].run_id, earlier[:-1]
    return new_run_path(workdir, record.task, request.model, record.method), "", earlier
