"""extract() into the embedding store: layout, identity, reuse, find_store, excluded rows."""

from __future__ import annotations

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest

import benchmark.pipelines.extract as extract_module
from benchmark.core.manifest import manifest_digest
from benchmark.core.errors import BenchError
from cache.embeddings import EmbeddingStore, find_store
from cache.pixels import PixelStore
from cache_fakes import FakeEncoder, FakeSpec, write_dataset
from benchmark.pipelines.extract import extract


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    return write_dataset(root, 7), root


def _extract(encoder, manifest, root, workdir, **options):
    options = {"shard_rows": 3, "batch_size": 2, **options}
    return extract(encoder, manifest, root, workdir=workdir, **options)


def test_store_layout_is_plain_hdf5_aligned_with_the_manifest(dataset, tmp_path):
    manifest, root = dataset
    encoder = FakeEncoder()
    path = _extract(encoder, manifest, root, tmp_path / "w")
    assert path.parent == tmp_path / "w" / "stores" / "fake-encoder"
    with h5py.File(path, "r") as handle:
        embedding = handle["image/embedding"][:]
        assert embedding.dtype == np.float16 and embedding.shape == (7, 8)
        assert handle["rows/image_id"].asstr()[:].tolist() == manifest["image_id"].to_list()
        assert not handle["rows/excluded"][:].any()
        assert handle["text/default/embedding"].dtype == np.float32
        assert handle["text/negated/prompts"].asstr()[:].tolist()[0] == "no Atelectasis"
        identity = json.loads(handle.attrs["identity"])
        assert identity["manifest_digest"] == manifest_digest(manifest)
        assert handle.attrs["complete"] and handle.attrs["weights_tag"] == "random-init"
    # the stored rows are the encoder applied to the pixel store rows
    pixels = PixelStore.open_or_build(manifest, root, size=16, workdir=tmp_path / "w")
    import torch

    with torch.inference_mode():
        direct = encoder.encode_image(encoder.preprocess(torch.from_numpy(pixels.read(np.arange(7)))))["embedding"]
    np.testing.assert_allclose(embedding, direct.numpy().astype(np.float16), rtol=1e-3, atol=1e-3)
    assert not path.with_name(path.stem + ".parts").exists()


def test_reader_api_and_find_store(dataset, tmp_path):
    manifest, root = dataset
    path = _extract(FakeEncoder(local=True), manifest, root, tmp_path / "w")
    found = find_store(tmp_path / "w", "fake-encoder", manifest_digest(manifest))
    assert found == path
    store = EmbeddingStore.open(found)
    assert len(store) == 7 and store.embed_dim == 8 and store.promptsets == ("default", "negated")
    assert store.image_embeddings([4, 1]).shape == (2, 8)
    np.testing.assert_array_equal(store.image_embeddings([4, 1]), store.image_embeddings()[[4, 1]])
    assert store.image_local().shape == (7, 4, 4)
    text = store.text("default")
    assert text["embedding"].shape == (3, 8) and text["class_name"].tolist()[:1] == ["Atelectasis"]
    assert set(text["polarity"]) == {"pos"}
    with pytest.raises(BenchError, match="no prompt set 'other'"):
        store.text("other")
    with pytest.raises(BenchError, match="bench extract --model fake-encoder") as error:
        find_store(tmp_path / "w", "fake-encoder", "0" * 64)
    # a store over another manifest exists: say the registered dataset changed rather than only "extract first"
    assert manifest_digest(manifest)[:16] in str(error.value) and "registered dataset changed" in str(error.value)
    with pytest.raises(BenchError) as error:
        find_store(tmp_path / "w", "other-encoder", "0" * 64)
    assert "registered dataset changed" not in str(error.value)


def test_find_store_refuses_to_guess_between_weights(dataset, tmp_path):
    manifest, root = dataset
    _extract(FakeEncoder(), manifest, root, tmp_path / "w")
    official = _extract(FakeEncoder(weights_digest="f" * 64), manifest, root, tmp_path / "w")
    with pytest.raises(BenchError, match="different weights"):
        find_store(tmp_path / "w", "fake-encoder", manifest_digest(manifest))
    assert find_store(tmp_path / "w", "fake-encoder", manifest_digest(manifest), weights_digest="f" * 64) == official


def test_same_identity_is_a_hit_and_computes_nothing(dataset, tmp_path, monkeypatch):
    manifest, root = dataset
    first = _extract(FakeEncoder(), manifest, root, tmp_path / "w")
    before = first.stat().st_mtime_ns
    monkeypatch.setattr(extract_module, "embed_shards", _must_not_run)
    monkeypatch.setattr(extract_module, "embed_prompt_sets", _must_not_run)
    again = _extract(FakeEncoder(), manifest, root, tmp_path / "w", batch_size=5)  # batch size is not identity
    assert again == first and again.stat().st_mtime_ns == before


def _must_not_run(*args, **kwargs):
    raise AssertionError("computed although the store was complete")


@pytest.mark.parametrize(
    "change",
    ["weights", "spec", "pixel_size", "manifest", "prompts"],
)
def test_a_different_identity_never_reuses_a_store(dataset, tmp_path, monkeypatch, change):
    manifest, root = dataset
    first = _extract(FakeEncoder(), manifest, root, tmp_path / "w")
    encoder = FakeEncoder()
    if change == "weights":
        encoder = FakeEncoder(weights_digest="e" * 64)
    elif change == "spec":
        encoder = FakeEncoder(spec=replace(FakeSpec(), family="fake2"))
    elif change == "pixel_size":
        encoder = FakeEncoder(spec=replace(FakeSpec(), preprocess=replace(FakeSpec().preprocess, pixel_size=12)))
    elif change == "manifest":
        manifest = manifest.with_columns(manifest["age"].reverse())
    elif change == "prompts":
        monkeypatch.setattr(FakeEncoder, "prompt_sets", lambda self: {"default": [("Effusion", "fluid", "pos")]})
    second = _extract(encoder, manifest, root, tmp_path / "w")
    assert second != first and second.exists() and first.exists()
    assert EmbeddingStore.open(second).identity != EmbeddingStore.open(first).identity


def test_extractor_version_is_part_of_the_identity(dataset, tmp_path, monkeypatch):
    manifest, root = dataset
    first = _extract(FakeEncoder(), manifest, root, tmp_path / "w")
    monkeypatch.setattr(extract_module, "EXTRACTOR_VERSION", "999")
    assert _extract(FakeEncoder(), manifest, root, tmp_path / "w") != first


def test_skip_bad_rows_are_nan_and_listed(dataset, tmp_path):
    manifest, root = dataset
    broken = root / manifest["path"][2]
    broken.write_bytes(broken.read_bytes()[:50])
    with pytest.raises(BenchError, match=str(broken)):
        _extract(FakeEncoder(), manifest, root, tmp_path / "w")
    store = EmbeddingStore.open(_extract(FakeEncoder(), manifest, root, tmp_path / "w", skip_bad=True))
    assert store.excluded.tolist() == [False, False, True, False, False, False, False]
    embedding = store.image_embeddings()
    assert np.isnan(embedding[2]).all() and not np.isnan(np.delete(embedding, 2, axis=0)).any()
    with h5py.File(store.path, "r") as handle:
        assert handle["excluded/path"].asstr()[:].tolist() == [str(broken)]


def test_bad_arguments_are_clear_errors(dataset, tmp_path, monkeypatch):
    manifest, root = dataset
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BenchError, match="no usable CUDA GPU"):
        _extract(FakeEncoder(), manifest, root, tmp_path / "w", device="cuda")
    with pytest.raises(BenchError, match="batch-size"):
        _extract(FakeEncoder(), manifest, root, tmp_path / "w", batch_size=0)


def test_loader_workers_and_batch_size_do_not_change_the_store(dataset, tmp_path):
    manifest, root = dataset
    serial = EmbeddingStore.open(_extract(FakeEncoder(), manifest, root, tmp_path / "a"))
    parallel = EmbeddingStore.open(_extract(FakeEncoder(), manifest, root, tmp_path / "b", workers=2, batch_size=3))
    np.testing.assert_allclose(
        parallel.image_embeddings().astype(np.float32), serial.image_embeddings().astype(np.float32), rtol=1e-3, atol=1e-3
    )
    assert parallel.identity == serial.identity


def test_an_empty_manifest_is_a_clear_error(dataset, tmp_path):
    manifest, root = dataset
    with pytest.raises(BenchError, match="no rows"):
        _extract(FakeEncoder(), manifest.head(0), root, tmp_path / "w")


def test_descriptive_spec_fields_do_not_invalidate_a_store(dataset, tmp_path):
    from benchmark.pipelines.extract import SPEC_FIELDS_NOT_IN_IDENTITY, identity_of
    from extractors.registry import get_spec

    spec = get_spec("tiny-clip")
    edited = replace(spec, **{name: "edited" for name in SPEC_FIELDS_NOT_IN_IDENTITY})
    def identity(of, pixels="c" * 64):
        return identity_of(of, "random-init", "d" * 64, {}, pixels)

    assert identity(edited) == identity(spec)
    assert identity(replace(spec, context_length=spec.context_length + 1)) != identity(spec)
    assert identity(spec, pixels="e" * 64) != identity(spec)  # other image content, another store


def test_leftover_shards_of_another_shard_size_are_discarded(dataset, tmp_path, monkeypatch):
    manifest, root = dataset
    reference = EmbeddingStore.open(_extract(FakeEncoder(), manifest, root, tmp_path / "ref"))
    real, written = extract_module._write_shard, []

    def interrupted_after_two(*args):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(real(*args))

    monkeypatch.setattr(extract_module, "_write_shard", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        _extract(FakeEncoder(), manifest, root, tmp_path / "w", shard_rows=2)
    monkeypatch.setattr(extract_module, "_write_shard", real)
    resumed = EmbeddingStore.open(_extract(FakeEncoder(), manifest, root, tmp_path / "w", shard_rows=3))
    np.testing.assert_array_equal(resumed.image_embeddings(), reference.image_embeddings())
