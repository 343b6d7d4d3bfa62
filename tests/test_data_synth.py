"""The synthetic NIH-layout dataset: official layout read back by the adapter, marginals, planted effects, traces."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from PIL import Image

from benchmark.core.manifest import patients_in_several_splits
from benchmark.datasets.nih import load_nih
from benchmark.datasets.phantom import TRACES, Anatomy, render
from benchmark.datasets.synth import CSV_HEADER, DEFAULT_EFFECTS, Effect, parse_effects, write_synthetic
from benchmark.core.errors import BenchError
from benchmark.tasks import build_task


def test_round_trip_through_the_nih_adapter(synthetic_nih):
    assert (synthetic_nih / "Data_Entry_2017_v2020.csv").read_text().splitlines()[0] == CSV_HEADER
    dataset = load_nih(synthetic_nih)
    manifest = dataset.manifest
    assert manifest.height == 150 and dataset.report["images_found"] == 150
    assert dataset.report["split_source"].startswith("official lists")
    assert dataset.report["unlisted_images"]["count"] == 0 and dataset.report["invalid_ages"]["count"] == 0
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert patients_in_several_splits(manifest) == []
    test_list = (synthetic_nih / "test_list.txt").read_text().split()
    assert set(manifest.filter(pl.col("split") == "test")["image_id"]) == set(test_list)
    with Image.open(synthetic_nih / manifest["path"][0]) as image:
        assert image.mode == "L" and image.size == (32, 32)


def test_effects_record_matches_the_labels_written(synthetic_nih):
    record = json.loads((synthetic_nih / "synthetic_effects.json").read_text())
    assert [effect["text"] for effect in record["effects"]] == list(DEFAULT_EFFECTS)
    assert "not medical findings" in record["warning"]
    csv = pl.read_csv(synthetic_nih / "Data_Entry_2017_v2020.csv", infer_schema=False)
    recorded = dict(zip(csv["Image Index"], csv["Finding Labels"]))
    ages = dict(zip(csv["Image Index"], csv["Patient Age"].cast(int)))
    flips = record["label_noise_flips"]["images"]
    assert record["label_noise_flips"]["count"] == len(flips) > 0
    for flip in flips:
        assert recorded[flip["image_id"]] == flip["recorded"] != flip["true"]
        assert ages[flip["image_id"]] >= 60, "label noise was planted in the old group only"
    assert record["groups"]["old"]["images"] == sum(age >= 60 for age in ages.values())


def test_same_seed_same_dataset_any_worker_count(tmp_path):
    first = write_synthetic(tmp_path / "a", n=24, size=16, seed=5)
    second = write_synthetic(tmp_path / "b", n=24, size=16, seed=5, workers=2)
    other = write_synthetic(tmp_path / "c", n=24, size=16, seed=6)
    names = ["Data_Entry_2017_v2020.csv", "test_list.txt", "synthetic_effects.json"]
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in names)
    images = sorted(path.name for path in (first / "images").iterdir())
    assert all((first / "images" / n).read_bytes() == (second / "images" / n).read_bytes() for n in images)
    assert (first / names[0]).read_bytes() != (other / names[0]).read_bytes()


def test_demographics_follow_nih_marginals(tmp_path):
    root = write_synthetic(tmp_path / "nih", n=400, size=16, seed=1, effects="none", seed_class_share=0)
    manifest = load_nih(root).manifest
    male = (manifest["sex"] == "M").mean()
    ap = (manifest["view"] == "AP").mean()
    no_finding = manifest["No_Finding"].mean()
    assert 0.42 < male < 0.72 and 0.25 < ap < 0.55 and 0.4 < no_finding < 0.68
    assert manifest["patient_id"].n_unique() < 0.6 * manifest.height, "patients should have follow-up images"
    assert 30 < manifest["age"].mean() < 60
    multi = manifest.select(pl.sum_horizontal(manifest.columns[7:21])).to_series()
    assert (multi >= 2).mean() > 0.05, "some images should carry several findings"


def test_seed_class_enrichment_makes_nih6x200_feasible(tmp_path):
    root = write_synthetic(tmp_path / "nih", n=240, size=16, seed=2, effects="none")
    record = json.loads((root / "synthetic_effects.json").read_text())
    assert record["sampler"]["per_class_and_cell_target"] == 3
    task = build_task("nih6x200", load_nih(root).manifest, per_class=12, seed=0)
    assert task.frame.height == 6 * 12
    bare = write_synthetic(tmp_path / "bare", n=240, size=16, seed=2, effects="none", seed_class_share=0)
    with pytest.raises(BenchError, match="too few single-label"):
        build_task("nih6x200", load_nih(bare).manifest, per_class=12, seed=0)


def test_planted_contrast_effect_is_measurable(tmp_path):
    def spread_by_sex(root):
        manifest = load_nih(root).manifest
        spread = [np.asarray(Image.open(root / path), dtype=float).std() for path in manifest["path"]]
        frame = manifest.with_columns(spread=pl.Series(spread))
        return dict(frame.group_by("sex").agg(pl.col("spread").mean()).iter_rows())

    planted = spread_by_sex(write_synthetic(tmp_path / "planted", n=80, size=32, seed=4, effects="contrast:F=0.6"))
    assert planted["F"] < 0.6 * planted["M"]
    plain = spread_by_sex(write_synthetic(tmp_path / "plain", n=80, size=32, seed=4, effects="none"))
    assert plain["F"] > 0.8 * plain["M"]


@pytest.mark.parametrize("finding", TRACES)
def test_every_finding_leaves_a_trace_that_scales_with_strength(finding):
    def draw(strength):
        findings = {finding: strength} if strength else {}
        return render(Anatomy(), findings, size=64, rng=np.random.default_rng(0), noise=0.0).astype(float)

    base = draw(0)
    full = np.abs(draw(1.0) - base).mean()
    weak = np.abs(draw(0.3) - base).mean()
    assert full > 0.1 and 0 < weak < full


def test_effects_are_parsed_and_checked(tmp_path):
    assert parse_effects("none") == () and parse_effects(None) == ()
    assert parse_effects("weak_trace:F:Effusion=0.5, label_noise:old=0.1") == (
        Effect("weak_trace", "F", 0.5, "Effusion"),
        Effect("label_noise", "old", 0.1),
    )
    for text, message in [
        ("blur:F=0.2", "unknown effect kind 'blur'"),
        ("contrast:women=0.2", "unknown effect group 'women'"),
        ("contrast:F", "is not KIND:GROUP=SIZE"),
        ("contrast:F=1.5", "between 0 and 1"),
        ("weak_trace:F=0.5", "only weak_trace names a finding"),
        ("weak_trace:F:Flu=0.5", "unknown finding 'Flu'"),
        ("contrast:F=0.1,contrast:F=0.2", "repeat a kind"),
    ]:
        with pytest.raises(BenchError, match=message):
            parse_effects(text)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(BenchError, match="not empty"):
        write_synthetic(tmp_path / "full", n=4, size=16)
    with pytest.raises(BenchError, match="not a synthetic dataset"):
        write_synthetic(tmp_path / "full", n=4, size=16, overwrite=True)
    assert (tmp_path / "full" / "keep.txt").exists()
