"""A repeated extraction is a cache hit found without importing torch or building the model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import cli

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import sys
from pathlib import Path
from benchmark.datasets.nih import load_nih
from benchmark.pipelines.extract import cached_store
dataset = load_nih(sys.argv[1])
hit = cached_store(sys.argv[3], dataset.manifest, dataset.root, workdir=Path(sys.argv[2]))
print(hit)
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


@pytest.mark.parametrize("model", ["tiny-clip", "tiny-gloria"])
def test_cache_hit_needs_no_torch(model, synthetic_nih, tmp_path):
    workdir = tmp_path / "work"
    argv = ["--workdir", str(workdir), "extract", "--model", model, "--dataset", "nih", "--root", str(synthetic_nih)]
    assert cli.main(argv) == 0
    store = next((workdir / "stores" / model).glob("*.h5"))

    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(synthetic_nih), str(workdir), model],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    hit, torch_line = done.stdout.strip().splitlines()[-2:]
    assert Path(hit) == store
    assert torch_line == "torch not imported"
