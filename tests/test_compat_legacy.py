"""Files written by version 0.1 (before the architecture change) are still read.

`tests/fixtures/legacy-0.1/` holds what 0.1's `bench` wrote for a 120-image synthetic dataset: the registered
manifest, a tiny-clip embedding store, and prediction files of the linear probe, zero-shot (CLIP and GLoRIA)
and a LoRA fine-tune.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmark.cli import main
from benchmark.core.manifest import manifest_digest
from benchmark.core.runs import RunRecord, read_predictions
from benchmark.datasets.registry import load_registered

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy-0.1"
STORE = "b1407053e1712427.h5"


@pytest.fixture
def legacy_workdir(tmp_path):
    workdir = tmp_path / "home"
    (workdir / "datasets" / "nih").mkdir(parents=True)
    for name in ("manifest.parquet", "source.json"):
        shutil.copy(LEGACY / name, workdir / "datasets" / "nih" / name)
    (workdir / "stores" / "tiny-clip").mkdir(parents=True)
    shutil.copy(LEGACY / "tiny-clip-store.h5", workdir / "stores" / "tiny-clip" / STORE)
    return workdir


@pytest.mark.parametrize("path", sorted((LEGACY / "runs").glob("*.parquet")), ids=lambda p: p.stem)
def test_old_prediction_files_read_as_typed_records(path):
    frame, record = read_predictions(path)
    stored = json.loads(pq.read_schema(path).metadata[b"cxr_fairbench"])
    assert isinstance(record, RunRecord) and record.run_id == stored["run_id"] and record.method == stored["method"]
    assert record.classes == tuple(stored["classes"]) and record.task == stored["task"]
    assert record.weights_tag == "random-init" and record.random_init is True
    assert frame.height == 24 and set(frame["split"].unique()) == {"val", "test"}
    if record.method == "lora":  # method-specific fields kept, at the top level when written back
        assert record.details["best_epoch"] == stored["best_epoch"] and "history" in record.details
        assert record.to_json()["best_epoch"] == stored["best_epoch"]


def test_old_files_rank_on_the_leaderboard(capsys):
    runs = sorted((LEGACY / "runs").glob("nih14-*.parquet"))
    argv = ["leaderboard", "--format", "json", "--n-boot", "20", "--n-perm", "0"]
    argv += [f"--predictions=r{i}={path}" for i, path in enumerate(runs)]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert {run["method"] for run in document["runs"]} == {"linear", "zeroshot"}


def test_old_store_feeds_the_heads_and_is_rebuilt_once_by_extract(legacy_workdir):
    """0.1's stores are read as they are; `bench extract` builds a new one once, because identities now carry
    the pixels' content digest (changed images are noticed) and each encoder's resize filter — the deliberate
    identity changes of 0.2."""
    from benchmark.pipelines.extract import identity_of
    from benchmark.pipelines.heads import HeadsRequest, fit_heads
    from cache.embeddings import EmbeddingStore
    from extractors.embed import prompt_sets
    from extractors.registry import get_spec

    manifest, _ = load_registered(legacy_workdir, "nih")
    store = EmbeddingStore.open(legacy_workdir / "stores" / "tiny-clip" / STORE)
    assert store.fingerprints is None and len(store) == manifest.height
    spec = get_spec("tiny-clip")
    now = identity_of(spec, "random-init", manifest_digest(manifest), prompt_sets(spec), "c" * 64)
    assert "content" in now["preprocessing"]["pixels"] and "content" not in store.identity["preprocessing"]["pixels"]
    assert now["manifest_digest"] == store.identity["manifest_digest"]  # the same dataset, read the same way
    (result,) = fit_heads(legacy_workdir, HeadsRequest(model="tiny-clip", task="nih14", heads=("linear",)))
    _, record = read_predictions(result.path)
    assert record.store_identity and record.rows["test"] > 0
