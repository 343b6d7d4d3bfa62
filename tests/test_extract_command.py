"""`bench extract` end to end on a small synthetic NIH-layout dataset with a tiny registered encoder."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import cli
from benchmark.datasets.registry import load_registered
from benchmark.core.manifest import manifest_digest
from benchmark.datasets.synth import write_synthetic
from cache.embeddings import EmbeddingStore, find_store


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "nih", n=24, size=32, seed=0)


def test_extract_registers_the_dataset_writes_the_store_and_reuses_it(synthetic_root, workdir, capsys, monkeypatch):
    argv = ["extract", "--workdir", str(workdir), "--model", "tiny-clip", "--root", str(synthetic_root), "--batch-size", "8"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    manifest, root = load_registered(workdir, "nih")
    path = find_store(workdir, "tiny-clip", manifest_digest(manifest))
    assert str(path) in out.replace("\n", "") and "random weights" in out
    store = EmbeddingStore.open(path)
    assert store.image_ids.tolist() == manifest["image_id"].to_list()
    embedding = store.image_embeddings()
    assert embedding.shape == (24, store.embed_dim) and np.isfinite(embedding).all()
    assert embedding.std(axis=0).max() > 0, "different images must get different embeddings"
    text = store.text("default")
    assert set(text["class_name"]) >= {"Effusion", "No_Finding"}

    before = path.stat().st_mtime_ns
    import extractors

    monkeypatch.setattr(extractors, "load_encoder", _must_not_build)  # a hit builds no model
    assert cli.main(argv) == 0
    assert path.stat().st_mtime_ns == before
    assert str(path) in capsys.readouterr().out.replace("\n", "")


def _must_not_build(*args, **kwargs):
    raise AssertionError("the encoder was built although its store was complete")


def test_cuda_without_a_gpu_is_a_clear_error(synthetic_root, workdir, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["extract", "--workdir", str(workdir), "--model", "tiny-clip", "--root", str(synthetic_root), "--device", "cuda"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "no usable CUDA GPU" in err and "--device cpu" in err and "Traceback" not in err


def test_missing_images_point_to_a_flag_that_extract_accepts(tmp_path, workdir, capsys):
    import shutil

    root = write_synthetic(tmp_path / "nih", n=24, size=32, seed=1)
    missing = sorted((root / "images").glob("*.png"))[:2]
    for path in missing:
        path.unlink()
    argv = ["extract", "--workdir", str(workdir / "missing"), "--model", "tiny-clip", "--root", str(root)]
    assert cli.main(argv) == 2
    assert "--allow-missing-images" in capsys.readouterr().err
    assert cli.main(argv + ["--allow-missing-images"]) == 0  # the flag the message names exists here too
    manifest, _ = load_registered(workdir / "missing", "nih")
    assert manifest.height == 22 and missing[0].name not in manifest["image_id"].to_list()
    shutil.rmtree(root)


def test_the_validation_split_options_reach_the_registered_manifest(tmp_path, workdir):
    root = write_synthetic(tmp_path / "nih", n=120, size=32, seed=0)
    base = ["extract", "--workdir", str(workdir), "--model", "tiny-clip", "--root", str(root)]
    assert cli.main(base) == 0
    default = load_registered(workdir, "nih")[0]
    assert cli.main(base + ["--val-fraction", "0.4", "--split-seed", "3"]) == 0
    custom = load_registered(workdir, "nih")[0]
    count = {name: frame["split"].value_counts().to_dict(as_series=False) for name, frame in
             (("default", default), ("custom", custom))}
    n_val = {name: dict(zip(c["split"], c["count"])).get("val", 0) for name, c in count.items()}
    assert n_val["custom"] > n_val["default"]
    assert (custom["split"] == "test").to_list() == (default["split"] == "test").to_list()  # the official test list
    find_store(workdir, "tiny-clip", manifest_digest(custom))  # a new manifest gets its own store
