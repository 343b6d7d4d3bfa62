"""Extraction across processes: resume after kill -9, two writers on one store, torchrun with 2 ranks."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import benchmark.pipelines.extract as extract_module
from benchmark.core.errors import BenchError
from cache_fakes import FakeEncoder, write_dataset
from benchmark.pipelines.extract import extract

FAKES = Path(__file__).with_name("cache_fakes.py")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    manifest = write_dataset(root, 12)
    manifest.write_parquet(tmp_path / "manifest.parquet")
    return manifest, root, tmp_path / "manifest.parquet"


def _environment():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), str(FAKES.parent)]))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _start(manifest_file, root, workdir, *extra):
    command = [sys.executable, str(FAKES), str(manifest_file), str(root), str(workdir), *extra]
    return subprocess.Popen(command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, timeout=60.0, process=None):
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"subprocess ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _contents(path):
    with h5py.File(path, "r") as handle:
        return {
            "embedding": handle["image/embedding"][:],
            "image_id": handle["rows/image_id"].asstr()[:].tolist(),
            "excluded": handle["rows/excluded"][:],
            "text": handle["text/default/embedding"][:],
            "identity": handle.attrs["identity"],
        }


def _assert_same_store(path, reference):
    got, expected = _contents(path), _contents(reference)
    np.testing.assert_array_equal(got.pop("embedding"), expected.pop("embedding"))
    np.testing.assert_array_equal(got.pop("excluded"), expected.pop("excluded"))
    np.testing.assert_array_equal(got.pop("text"), expected.pop("text"))
    assert got == expected


def _reference(manifest, root, tmp_path):
    return extract(FakeEncoder(), manifest, root, workdir=tmp_path / "reference", shard_rows=2, batch_size=1)


def test_resume_after_kill_9_equals_an_uninterrupted_run(dataset, tmp_path, monkeypatch):
    manifest, root, manifest_file = dataset
    reference = _reference(manifest, root, tmp_path)
    workdir = tmp_path / "w"
    process = _start(manifest_file, root, workdir, "--delay", "0.3")
    parts = workdir / "stores" / "fake-encoder" / (reference.stem + ".parts")
    _wait_for(lambda: len(list(parts.glob("shard-*.npz"))) >= 2, process=process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    finished = sorted(p.name for p in parts.glob("shard-*.npz"))
    assert 2 <= len(finished) < 6, "the kill should land mid-extraction"
    assert not (parts.parent / reference.name).exists(), "a killed run must not leave a store that looks complete"

    computed: list[int] = []
    real = extract_module.embed_shards
    monkeypatch.setattr(
        extract_module, "embed_shards",
        lambda encoder, pixels, plan, parts, shards, **kw: (computed.extend(shards), real(encoder, pixels, plan, parts, shards, **kw)),
    )
    resumed = extract(FakeEncoder(), manifest, root, workdir=workdir, shard_rows=2, batch_size=1)
    assert len(computed) == 6 - len(finished), "only the missing shards are recomputed"
    _assert_same_store(resumed, reference)


def test_two_writers_on_one_store(dataset, tmp_path, monkeypatch, capsys):
    manifest, root, manifest_file = dataset
    reference = _reference(manifest, root, tmp_path)
    workdir = tmp_path / "w"
    first = _start(manifest_file, root, workdir, "--delay", "0.3")
    stores = workdir / "stores" / "fake-encoder"
    _wait_for(lambda: any(stores.glob("*.h5.lock.owner")), process=first)

    with pytest.raises(BenchError, match="already writing .*--no-wait"):
        extract(FakeEncoder(), manifest, root, workdir=workdir, shard_rows=2, batch_size=1, wait=False)

    monkeypatch.setattr(extract_module, "embed_shards", _must_not_run)
    from benchmark.ui import RichProgress

    second = extract(FakeEncoder(), manifest, root, workdir=workdir, shard_rows=2, batch_size=1,
                     progress=RichProgress(enabled=False))
    assert "waiting" in capsys.readouterr().err
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert f"store {second}" in out
    _assert_same_store(second, reference)


def _must_not_run(*args, **kwargs):
    raise AssertionError("the waiting writer recomputed shards the first writer had finished")


def test_torchrun_with_two_ranks_equals_one_process(dataset, tmp_path):
    manifest, root, manifest_file = dataset
    workdir = tmp_path / "w"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(FAKES), str(manifest_file), str(root), str(workdir),
    ]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    embedded = {}
    # both ranks print to one pipe, so their lines may run together: match the records, not the lines
    for rank, shards in re.findall(r"embedded (\d+) ((?:\d+,?)*)", done.stdout):
        embedded.setdefault(rank, []).extend(int(s) for s in shards.split(",") if s)
    assert sorted(embedded) == ["0", "1"], done.stdout
    assert embedded["0"] == [0, 2, 4] and embedded["1"] == [1, 3, 5]
    stores = list((workdir / "stores" / "fake-encoder").glob("*.h5"))
    assert len(stores) == 1
    _assert_same_store(stores[0], _reference(manifest, root, tmp_path))
