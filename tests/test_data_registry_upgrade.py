"""Manifests of earlier versions (no race, insurance or CheXpert-only columns) load, upgraded, digest unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from benchmark.core.errors import BenchError
from benchmark.core.manifest import (
    MANIFEST_COLUMNS, OPTIONAL_COLUMNS, manifest_digest, upgrade_manifest, validate_manifest,
)
from benchmark.core.runs import read_predictions
from benchmark.datasets.registry import load_registered

LEGACY = Path(__file__).parent / "fixtures" / "legacy-0.1"


def test_a_legacy_registered_manifest_is_upgraded_on_read_with_its_digest(workdir):
    folder = workdir / "datasets" / "nih"
    folder.mkdir(parents=True)
    shutil.copy(LEGACY / "manifest.parquet", folder / "manifest.parquet")
    shutil.copy(LEGACY / "source.json", folder / "source.json")
    old = pl.read_parquet(folder / "manifest.parquet")
    assert "race" not in old.columns
    manifest, _ = load_registered(workdir, "nih")
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["race"].null_count() == manifest.height
    assert manifest_digest(manifest) == json.loads((LEGACY / "source.json").read_text())["digest"] == manifest_digest(old)


def test_upgrade_adds_only_optional_columns_and_a_value_changes_the_digest():
    old = pl.read_parquet(LEGACY / "manifest.parquet")
    upgraded, added = upgrade_manifest(old)
    assert set(added) == set(OPTIONAL_COLUMNS)
    unchanged, none = upgrade_manifest(old.drop("view"))  # not an earlier version: left to validation
    assert none == [] and unchanged.equals(old.drop("view"))
    with pytest.raises(BenchError, match=r"missing: \['view', "):
        validate_manifest(old.drop("view"))
    with_race = upgraded.with_columns(race=pl.lit("White"))
    assert manifest_digest(with_race) != manifest_digest(upgraded)
    with pytest.raises(BenchError, match="race values 'white' are not one of"):
        validate_manifest(upgraded.with_columns(race=pl.lit("white")))


def test_legacy_prediction_files_read_as_in_distribution():
    for path in sorted((LEGACY / "runs").glob("*.parquet")):
        _, record = read_predictions(path)
        assert record.test_dataset is None and record.dataset in (None, "nih")
