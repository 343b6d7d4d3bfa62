"""`bench models`: every registered encoder, with whether its weights are found and where they were looked for."""

from __future__ import annotations

import json

from benchmark import cli
from extractors.registry import REGISTRY


def models_json(capsys, *extra):
    assert cli.main(["models", "--json", *extra]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_models_json_lists_the_registry_and_finds_weights_in_the_weights_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    rows = models_json(capsys)
    assert set(rows) == set(REGISTRY)
    assert rows["clip-vit-b16"]["weights"] == "missing"
    assert rows["tiny-clip"]["weights"] == "random-init"
    assert rows["clip-rn50x4"]["pixel_size"] == 288 and rows["clip-rn50x4"]["image_embed_dim"] == 640
    assert any(str(tmp_path) in place for place in rows["clip-vit-b16"]["looked_in"])

    (tmp_path / "clip-vit-b16").mkdir()
    (tmp_path / "clip-vit-b16" / "open_clip_model.safetensors").write_bytes(b"")
    rows = models_json(capsys, "--variant", "official")
    assert rows["clip-vit-b16"]["weights"] == "found"
    assert rows["clip-vit-b16"]["weights_path"] == str(tmp_path / "clip-vit-b16" / "open_clip_model.safetensors")
    assert all(row["variant"] == "official" for row in rows.values())


def test_models_table_prints_every_name(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path))
    from benchmark.ui import console

    monkeypatch.setattr(console, "_width", 200)  # rich reads COLUMNS once, when the console is created
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REGISTRY)
    assert "random-init" in out and "missing" in out


def test_models_table_prints_every_name_on_an_80_column_terminal(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path))
    from benchmark.ui import console

    monkeypatch.setattr(console, "_width", 80)  # the default width when stdout is not a terminal
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REGISTRY)
