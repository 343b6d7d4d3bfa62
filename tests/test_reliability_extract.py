"""Nothing stale, nothing lost: changed images are noticed, failed extractions change nothing, cache hits
write nothing, a read-only working directory gets one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cache.pixel_build as pixel_build
from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.datasets.registry import registered_source
from benchmark.datasets.synth import write_synthetic
from cache.embeddings import EmbeddingStore



@pytest.fixture
def dataset(tmp_path):
    return write_synthetic(tmp_path / "nih", n=24, size=32, seed=3)


def extract(workdir, root, *extra) -> int:
    return main(["--workdir", str(workdir), "extract", "--model", "tiny-clip", "--root", str(root), *extra])


def tree(folder: Path) -> dict:
    """Every file (size, modification time) and folder under `folder`; lock files aside (empty, by design)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "folder"
            for p in sorted(folder.rglob("*")) if not p.name.endswith(".lock")}


def store_of(workdir) -> EmbeddingStore:
    stores = sorted((workdir / "stores" / "tiny-clip").glob("*.h5"), key=lambda p: p.stat().st_mtime_ns)
    return EmbeddingStore.open(stores[-1])


def count_decodes(monkeypatch) -> list:
    decoded, real = [], pixel_build.decode_bytes

    def counting(data, size, *args, **kw):
        decoded.append(size)
        return real(data, size, *args, **kw)

    monkeypatch.setattr(pixel_build, "decode_bytes", counting)
    monkeypatch.setattr("cache.decode.decode_bytes", counting)
    return decoded


def test_a_changed_image_is_noticed_and_only_it_is_decoded_again(dataset, tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    before = store_of(workdir)
    image = sorted((dataset / "images").glob("*.png"))[5]
    row = list(before.image_ids).index(image.name)
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)  # the same file, inverted
    decoded = count_decodes(monkeypatch)
    capsys.readouterr()
    assert extract(workdir, dataset) == 0
    assert "cache hit" not in capsys.readouterr().out
    assert len(decoded) == 1, "only the changed image is decoded again"
    after = store_of(workdir)
    assert after.path != before.path and after.attrs["pixels_content_digest"] != before.attrs["pixels_content_digest"]
    changed = ~np.all(after.image_embeddings() == before.image_embeddings(), axis=1)
    assert changed.tolist() == [i == row for i in range(len(after))]


def test_touching_an_image_is_no_change(dataset, tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    os.utime(sorted((dataset / "images").glob("*.png"))[2])  # a new modification time, the same bytes
    decoded = count_decodes(monkeypatch)
    capsys.readouterr()
    assert extract(workdir, dataset) == 0
    assert "cache hit" in capsys.readouterr().out and decoded == []


def test_verify_content_catches_an_edit_that_keeps_size_and_time(dataset, tmp_path, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    image = sorted((dataset / "images").glob("*.png"))[4]
    stat, data = image.stat(), bytearray(image.read_bytes())
    data[-13] ^= 0xFF  # a byte of the IEND chunk's CRC: another file, same size, still decodable
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    capsys.readouterr()
    assert extract(workdir, dataset) == 0 and "cache hit" in capsys.readouterr().out  # size and time say same
    assert extract(workdir, dataset, "--verify-content") == 0
    assert "1 image(s) changed" in " ".join(capsys.readouterr().out.split())


def test_an_empty_file_replacing_an_image_is_never_a_cache_hit(dataset, tmp_path, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    image = sorted((dataset / "images").glob("*.png"))[0]
    image.write_bytes(b"")
    capsys.readouterr()
    assert extract(workdir, dataset) == 2
    err = capsys.readouterr().err
    assert image.name in err and "--skip-bad" in err


def test_a_failed_extract_leaves_the_workdir_and_the_registered_dataset_as_they_were(dataset, tmp_path, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    registered = registered_source(workdir, "nih")
    other = write_synthetic(tmp_path / "other", n=30, size=32, seed=9)
    (sorted((other / "images").glob("*.png"))[-1]).write_bytes(b"not a png")
    before = tree(workdir)
    with pytest.raises(SystemExit):
        extract(workdir, other, "--batch-size", "0")
    assert main(["--workdir", str(workdir), "extract", "--model", "tiny-clipp", "--root", str(other)]) == 2
    assert extract(workdir, other) == 2  # an image that cannot be decoded
    assert "cannot use image" in capsys.readouterr().err
    assert tree(workdir) == before, "a failed run changed the workdir"
    assert registered_source(workdir, "nih") == registered
    assert main(["--workdir", str(workdir), "fit-heads", "--model", "tiny-clip", "--task", "nih14",
                 "--heads", "linear"]) == 0


def test_a_cache_hit_writes_nothing(dataset, tmp_path, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    before = tree(workdir)
    assert extract(workdir, dataset) == 0
    assert "cache hit" in capsys.readouterr().out
    assert tree(workdir) == before


def test_tiny_and_constant_images_need_a_decision(dataset, tmp_path, capsys):
    images = sorted((dataset / "images").glob("*.png"))
    Image.new("L", (1, 1), 0).save(images[1])
    Image.new("L", (64, 64), 128).save(images[2])
    assert extract(tmp_path / "a", dataset) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert images[1].name in err and "tiny image (1x1 pixels)" in err and "--keep-degenerate" in err
    assert extract(tmp_path / "a", dataset, "--skip-bad") == 0
    excluded = store_of(tmp_path / "a").excluded
    assert int(excluded.sum()) == 2
    assert extract(tmp_path / "b", dataset, "--keep-degenerate") == 0
    assert int(store_of(tmp_path / "b").excluded.sum()) == 0
    capsys.readouterr()
    assert extract(tmp_path / "a", dataset, "--keep-degenerate") == 0  # the store that excluded them keeps them now
    assert "were excluded as degenerate and are now kept" in " ".join(capsys.readouterr().out.split())
    assert int(store_of(tmp_path / "a").excluded.sum()) == 0


def test_extract_shows_what_the_adapter_repaired(dataset, tmp_path, capsys):
    csv = dataset / "Data_Entry_2017_v2020.csv"
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[1].split(",")
    fields[header.index("Patient Age")] = "412"
    csv.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    assert extract(tmp_path / "w", dataset) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "412" in out and "unknown" in out


def test_a_read_only_workdir_reads_and_refuses_writes_in_one_line(dataset, tmp_path, monkeypatch, capsys):
    import errno

    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    real_mkdir, real_open = os.mkdir, os.open

    def read_only(path, *args, **kwargs):  # what a read-only mount answers (root ignores file modes)
        if str(path).startswith(str(workdir)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    def open_read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(workdir)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    monkeypatch.setattr(os, "open", open_read_only)
    capsys.readouterr()
    assert extract(workdir, dataset) == 0 and "cache hit" in capsys.readouterr().out
    code = main(["--workdir", str(workdir), "fit-heads", "--model", "tiny-clip", "--task", "nih14", "--heads",
                 "linear"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "read-only" in err and str(workdir) in err, err


def test_workdir_that_is_a_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "a-file"
    path.write_text("x")
    assert main(["--workdir", str(path), "runs"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_library_errors_are_bench_errors_not_tracebacks(dataset, tmp_path):
    from benchmark.pipelines.extract import ExtractRequest, extract_dataset

    with pytest.raises(BenchError, match="unknown encoder"):
        extract_dataset(ExtractRequest(model="nope", root=dataset), tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_fit_heads_refuses_embeddings_of_images_that_changed_since(dataset, tmp_path, capsys):
    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    image = sorted((dataset / "images").glob("*.png"))[3]
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    fit = ["--workdir", str(workdir), "fit-heads", "--model", "tiny-clip", "--task", "nih14", "--heads", "linear"]
    capsys.readouterr()
    assert main(fit) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "1 image(s) changed" in err and image.name in err and "bench extract" in err
    assert extract(workdir, dataset) == 0 and main(fit) == 0


def test_putting_an_image_back_finds_the_store_of_that_content(dataset, tmp_path, capsys):
    workdir = tmp_path / "w"
    fit = ["--workdir", str(workdir), "fit-heads", "--model", "tiny-clip", "--task", "nih14", "--heads", "linear"]
    assert extract(workdir, dataset) == 0
    first = store_of(workdir).path
    image = sorted((dataset / "images").glob("*.png"))[3]
    original = image.read_bytes()
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    assert extract(workdir, dataset) == 0
    image.write_bytes(original)
    capsys.readouterr()
    assert extract(workdir, dataset) == 0  # the pixels are refreshed; the first store's embeddings are reused
    out = " ".join(capsys.readouterr().out.split())
    assert first.name in out and "embedded" not in out and "cache hit" in out
    assert main(fit) == 0


def test_the_stale_store_named_is_the_one_of_these_files(dataset, tmp_path):
    """With stores of two folders, the refusal names the store of these files (fewest changed images), not the
    newest store, which was made from other files."""
    import shutil

    from benchmark.datasets.adapters import load_dataset
    from benchmark.pipelines.heads import fresh_store

    workdir = tmp_path / "w"
    assert extract(workdir, dataset) == 0
    own = store_of(workdir).path
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    for image in sorted((other / "images").glob("*.png"))[:2]:
        Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    assert extract(workdir, other) == 0
    newest = store_of(workdir).path
    assert newest != own
    image = sorted((dataset / "images").glob("*.png"))[5]
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    manifest = load_dataset("nih", dataset).manifest
    with pytest.raises(BenchError, match=f"1 image\\(s\\) changed since {own} was extracted .*{image.name}"):
        fresh_store([newest, own], manifest, dataset)
