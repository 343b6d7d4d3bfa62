"""Bad inputs get one line naming the file, row or value and what to do — never a traceback."""

from __future__ import annotations

import gzip
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch

from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.datasets.nih import load_nih
from benchmark.datasets.synth import write_synthetic
from extractors.weights import read_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("small") / "nih", n=24, size=32, seed=4)


def copy_dataset(small, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(small, tmp_path / "nih"))


@pytest.mark.parametrize("content, message", [
    (lambda text: gzip.compress(text), "is gzip-compressed; decompress it"),
    (lambda text: bytes(range(256)) * 8, "is not UTF-8 text"),
    (lambda text: b"Image Index,Finding\x00Labels\n" + text, "holds binary data"),
])
def test_a_metadata_file_that_is_not_a_csv(small, tmp_path, content, message):
    root = copy_dataset(small, tmp_path)
    csv = root / "Data_Entry_2017_v2020.csv"
    csv.write_bytes(content(csv.read_bytes()))
    with pytest.raises(BenchError, match=message) as error:
        load_nih(root)
    assert str(csv) in str(error.value)


class Payload:
    """Unpickling this runs code: what a malicious checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoints_are_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    legacy, current = tmp_path / "legacy.pt", tmp_path / "zip.pt"
    with open(legacy, "wb") as handle:
        torch.save({"state_dict": Payload(marker)}, handle, _use_new_zipfile_serialization=False)
    torch.save({"state_dict": Payload(marker)}, current)
    for path in (legacy, current):
        with pytest.raises(BenchError) as error:
            read_checkpoint(path)
        text = str(error.value)
        assert str(path) in text and "--trust-checkpoint" in text and "run code" in text and "system" in text
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "cannot be read as a checkpoint"),
    (lambda data: b"", r"is empty \(0 bytes\)"),
])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_damaged_checkpoints_name_the_file(tmp_path, damage, message, suffix):
    from safetensors.torch import save_file

    path = tmp_path / f"weights{suffix}"
    tensors = {"w": torch.arange(4000, dtype=torch.float32)}
    save_file(tensors, str(path)) if suffix == ".safetensors" else torch.save(tensors, path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(BenchError, match=message) as error:
        read_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_bad_checkpoint_through_the_cli_is_one_line(small, tmp_path, capsys):
    path = tmp_path / "open_clip_model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    code = main(["--workdir", str(tmp_path / "w"), "extract", "--model", "tiny-clip", "--root", str(small),
                 "--weights", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(path.name) in err
    assert not (tmp_path / "w" / "datasets").exists()


@pytest.mark.parametrize("argv, message", [
    (["--mlp-epochs", "-1"], "argument --mlp-epochs: -1 must be at least 1"),
    (["--mlp-batch-size", "0"], "argument --mlp-batch-size: 0 must be at least 1"),
    (["--mlp-batch-size", "1"], "must be at least 2 (BatchNorm"),
    (["--mlp-lr", "nan"], "argument --mlp-lr: nan must be a positive number"),
    (["--modle", "x"], "unknown option --modle; did you mean --model?"),
])
def test_numeric_options_and_typos_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit-heads", "--model", "tiny-clip", "--task", "nih14", *argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_single_label_probabilities_must_sum_to_one(tmp_path, capsys):
    frame = pl.DataFrame({"image_id": ["a", "b", "c", "d"], "split": ["val", "val", "test", "test"],
                          "y_A": [1, 0, 1, 0], "y_B": [0, 1, 0, 1],
                          "p_A": [0.9, 0.2, 0.7, 0.6], "p_B": [0.1, 0.8, 0.3, 0.9]})
    path = tmp_path / "mine.csv"
    frame.write_csv(path)
    assert main(["leaderboard", "--predictions", f"mine={path}", "--n-boot", "10", "--n-perm", "0"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "row 3 (image_id 'd')" in err and "sum to 1.5" in err


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(small, tmp_path):
    """A process whose files may not grow past 60 kB meets what a full disk does to a write (EFBIG/ENOSPC)."""
    workdir = tmp_path / "w"
    done = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "--workdir", str(workdir), "extract", "--model", "tiny-clip",
         "--root", str(small)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=_limit_file_size, capture_output=True, text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left" in lines[0] and ".npz" in lines[0], done.stderr
    left = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
    assert left == [], left
    assert not (workdir / "datasets").exists()


def test_a_failed_prediction_write_leaves_no_run_folder(tmp_path, monkeypatch):
    import errno

    from benchmark.core.runs import RunRecord, new_run_path, write_predictions

    frame = pl.DataFrame({"image_id": ["a", "b"], "split": ["val", "test"], "y_A": [1, 0], "p_A": [0.4, 0.2]})
    path = new_run_path(tmp_path, "t", "enc", "linear")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pyarrow.parquet.write_table", full_disk)
    with pytest.raises(OSError):
        write_predictions(path, frame, RunRecord(run_id="", encoder="enc", method="linear", task="t"))
    assert not path.parent.exists()
