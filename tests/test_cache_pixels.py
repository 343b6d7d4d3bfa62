"""The pixel store: decode once, rows aligned with the manifest, reuse, resume, bad images, workers."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

import cache.pixel_build as pixels_module
from benchmark.core.errors import BenchError
from benchmark.core.workdir import Workdir
from cache.pixels import PixelStore, decode_image
from cache_fakes import write_dataset


def test_decode_pads_non_square_images_to_a_centred_square(tmp_path):
    image = np.full((2, 4), 200, dtype=np.uint8)  # 2 rows, 4 columns
    Image.fromarray(image, mode="L").save(tmp_path / "wide.png")
    decoded = decode_image(tmp_path / "wide.png", 4)
    expected = np.zeros((4, 4), dtype=np.uint8)
    expected[1:3] = 200
    np.testing.assert_array_equal(decoded, expected)


def test_decode_scales_sixteen_bit_and_drops_colour(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert decode_image(tmp_path / "deep.png", 8).max() == 255
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 1] = 255
    rgba[..., 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "green.png")
    decoded = decode_image(tmp_path / "green.png", 4)
    assert decoded.shape == (4, 4) and decoded.dtype == np.uint8
    assert 140 < decoded.mean() < 160  # luma of pure green: 0.587 * 255


def test_store_rows_follow_the_manifest_and_reads_in_any_order(tmp_path):
    manifest = write_dataset(tmp_path / "data", 7)
    store = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w", shard_rows=3)
    assert len(store) == 7
    assert list(store.image_ids) == manifest["image_id"].to_list()
    assert not store.excluded.any()
    expected = np.stack([decode_image(tmp_path / "data" / p, 16) for p in manifest["path"]])
    np.testing.assert_array_equal(store.read(np.arange(7)), expected)
    np.testing.assert_array_equal(store.read([5, 0, 5, 2]), expected[[5, 0, 5, 2]])
    with h5py.File(store.path, "r") as handle:  # readable with plain h5py
        assert handle["pixels"].dtype == np.uint8 and handle.attrs["complete"]
    assert not store.path.with_name(store.path.stem + ".parts").exists()


def test_second_open_reuses_the_store_without_decoding(tmp_path, monkeypatch):
    manifest = write_dataset(tmp_path / "data", 4)
    first = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w")
    monkeypatch.setattr(pixels_module, "decode_shard", _must_not_run)
    again = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w")
    assert again.path == first.path
    other_size = Workdir(tmp_path / "w").pixel_store(again.manifest_digest, 8)
    assert other_size != first.path  # the size is part of the key


def _must_not_run(job):
    raise AssertionError("decoded although the store was complete")


def test_interrupted_build_resumes_and_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    manifest = write_dataset(tmp_path / "data", 10)
    reference = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "ref", shard_rows=3)

    real = pixels_module.decode_shard
    decoded: list[int] = []

    def crash_on_third(job):
        if len(decoded) == 2:
            raise KeyboardInterrupt  # stands in for a kill between shards
        decoded.append(job.shard)
        return real(job)

    monkeypatch.setattr(pixels_module, "decode_shard", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w", shard_rows=3)
    final = Workdir(tmp_path / "w").pixel_store(reference.manifest_digest, 16)
    assert not final.exists()

    resumed: list[int] = []
    monkeypatch.setattr(pixels_module, "decode_shard", lambda job: (resumed.append(job.shard), real(job))[1])
    store = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w", shard_rows=3)
    assert sorted(resumed) == [2, 3]
    np.testing.assert_array_equal(store.read(np.arange(10)), reference.read(np.arange(10)))


def test_worker_processes_give_the_same_store(tmp_path):
    manifest = write_dataset(tmp_path / "data", 9)
    serial = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "a", shard_rows=2)
    parallel = PixelStore.open_or_build(
        manifest, tmp_path / "data", size=16, workdir=tmp_path / "b", workers=2, shard_rows=2
    )
    np.testing.assert_array_equal(parallel.read(np.arange(9)), serial.read(np.arange(9)))


def _break_images(root, manifest):
    truncated = root / manifest["path"][1]
    truncated.write_bytes(truncated.read_bytes()[:60])
    empty = root / manifest["path"][4]
    empty.write_bytes(b"")
    return truncated, empty


def test_bad_image_stops_with_the_file_named(tmp_path):
    manifest = write_dataset(tmp_path / "data", 6)
    truncated, _ = _break_images(tmp_path / "data", manifest)
    with pytest.raises(BenchError) as error:
        PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w")
    assert str(truncated) in str(error.value) and "--skip-bad" in str(error.value)


def test_skip_bad_records_the_excluded_images(tmp_path):
    manifest = write_dataset(tmp_path / "data", 6)
    truncated, empty = _break_images(tmp_path / "data", manifest)
    store = PixelStore.open_or_build(
        manifest, tmp_path / "data", size=16, workdir=tmp_path / "w", skip_bad=True, shard_rows=4
    )
    assert store.excluded.tolist() == [False, True, False, False, True, False]
    assert [bad["path"] for bad in store.bad] == [str(truncated), str(empty)]
    assert all(bad["reason"] for bad in store.bad)
    assert not store.read([1, 4]).any()
    assert store.read([0]).any()
    with pytest.raises(BenchError, match="excludes 2 image"):
        PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w")


def test_a_store_half_assembled_by_a_dead_writer_is_rebuilt_and_cleaned(tmp_path):
    manifest = write_dataset(tmp_path / "data", 5)
    from benchmark.core.manifest import manifest_digest

    final = Workdir(tmp_path / "w").pixel_store(manifest_digest(manifest), 16)
    final.parent.mkdir(parents=True)
    leftover = final.with_name(f".{final.name}.tmp-4194304")
    leftover.write_bytes(b"\x89HDF half written")
    store = PixelStore.open_or_build(manifest, tmp_path / "data", size=16, workdir=tmp_path / "w")
    assert store.path == final and len(store) == 5
    assert not leftover.exists()
    assert sorted(p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")) == [final.name]
