"""Manifest schema checks, digest, and the dataset registry in the workdir."""

from __future__ import annotations

import json

import polars as pl
import pytest

from benchmark.core.manifest import manifest_digest, validate_manifest
from benchmark.datasets.nih import NihDataset, load_nih
from benchmark.datasets.registry import load_registered, register_dataset
from benchmark.core.errors import BenchError


@pytest.fixture(scope="module")
def manifest(synthetic_nih):
    return load_nih(synthetic_nih).manifest


def test_digest_is_stable_and_sensitive_to_every_change(manifest):
    digest = manifest_digest(manifest)
    assert len(digest) == 64 and digest == manifest_digest(manifest.clone())
    changed_value = manifest.with_columns(pl.when(pl.col("image_id") == manifest["image_id"][0]).then(pl.lit(33.0)).otherwise(pl.col("age")).alias("age"))
    changed_order = manifest.reverse()
    changed_null = manifest.with_columns(pl.lit(None, dtype=pl.Utf8).alias("view"))
    digests = {manifest_digest(frame) for frame in (changed_value, changed_order, changed_null)}
    assert digest not in digests and len(digests) == 3


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda m: m.drop("view"), "columns do not match"),
        (lambda m: m.with_columns(pl.col("age").cast(pl.Int64)), "wrong column types"),
        (lambda m: pl.concat([m, m.head(1)]), "duplicate image ids"),
        (lambda m: m.with_columns(pl.lit("../x.png").alias("path")), "paths that would leave the dataset root"),
        (lambda m: m.with_columns(pl.lit("X").alias("sex")), "sex values"),
        (lambda m: m.with_columns(pl.lit(130.0).alias("age")), "outside 0-120"),
        (lambda m: m.with_columns(pl.lit("dev").alias("split")), "split values"),
        (lambda m: m.with_columns(pl.lit(2, dtype=pl.Int8).alias("Edema")), "label column Edema"),
        (lambda m: m.with_columns(pl.lit("00000001").alias("patient_id")), "more than one split"),
    ],
)
def test_validate_manifest_rejects(manifest, change, expected):
    validate_manifest(manifest)
    with pytest.raises(BenchError, match=expected):
        validate_manifest(change(manifest), source="test manifest")


def test_register_and_load_round_trip(workdir, synthetic_nih):
    dataset = load_nih(synthetic_nih)
    folder = register_dataset(workdir, "synth", dataset)
    assert folder == workdir / "datasets" / "synth"
    source = json.loads((folder / "source.json").read_text())
    assert source["root"] == str(synthetic_nih.resolve()) and source["digest"] == manifest_digest(dataset.manifest)
    loaded, root = load_registered(workdir, "synth")
    assert loaded.equals(dataset.manifest) and root == synthetic_nih.resolve()
    assert not list(folder.glob(".*.tmp"))


def test_load_unregistered_and_tampered(workdir, synthetic_nih):
    with pytest.raises(BenchError, match=r"no dataset 'nih' is registered.*bench extract"):
        load_registered(workdir, "nih")
    dataset = load_nih(synthetic_nih)
    register_dataset(workdir, "synth", dataset)
    changed = dataset.manifest.with_columns(pl.lit("PA").alias("view"))
    changed.write_parquet(workdir / "datasets" / "synth" / "manifest.parquet")
    with pytest.raises(BenchError, match="does not match the digest"):
        load_registered(workdir, "synth")
    with pytest.raises(BenchError, match="dataset name"):
        register_dataset(workdir, "../evil", dataset)
    with pytest.raises(BenchError, match="duplicate image ids"):
        register_dataset(workdir, "bad", NihDataset(pl.concat([dataset.manifest, dataset.manifest.head(1)]), synthetic_nih))
