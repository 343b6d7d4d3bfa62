"""Shared test fixtures. Tests run on the CPU, offline, on small data they build themselves."""

from __future__ import annotations

import os

import pytest

# Keep each test process to one thread: `make test` runs two pytest workers on two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh BENCH_HOME for one test."""
    path = tmp_path / "bench-home"
    path.mkdir()
    monkeypatch.setenv("BENCH_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def synthetic_nih(tmp_path_factory):
    """A small synthetic dataset in the official NIH layout (150 images, 32 px, default planted effects),
    written once per test session. Read-only: copy it before changing anything."""
    from benchmark.datasets.synth import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("synthetic-nih") / "nih", n=150, size=32, seed=0)
