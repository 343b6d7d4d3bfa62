"""A workdir with a tiny-clip store of 400 synthetic NIH images: enough for both sexes and age groups in every
split (the session's 150-image dataset is not), for the mitigation and probe tests."""

from __future__ import annotations

from benchmark.cli import main


def extracted_workdir(tmp_path_factory, name: str):
    from benchmark.datasets.synth import write_synthetic

    root = write_synthetic(tmp_path_factory.mktemp(f"{name}-nih") / "nih", n=400, size=32, seed=1)
    workdir = tmp_path_factory.mktemp(f"{name}-workdir")
    assert main(["extract", "--model", "tiny-clip", "--root", str(root), "--workdir", str(workdir)]) == 0
    return workdir


def copy_of(workdir, tmp_path):
    """A private copy of a module's workdir, for a test that writes runs."""
    import shutil

    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    return copy
