"""The CUDA paths: bf16 autocast and pinned memory in extraction, the fp16 grad scaler and bf16 in fine-tuning.

Skipped without a CUDA GPU (CI has none); `scripts/gpu-check.sh` runs them (`pytest -m cuda`) on a GPU machine,
beside the real-size benchmarks and a two-process torchrun (NCCL) of extraction and fine-tuning.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (scripts/gpu-check.sh)")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from benchmark.datasets.nih import load_nih
    from benchmark.datasets.synth import write_synthetic

    return load_nih(write_synthetic(tmp_path_factory.mktemp("cuda") / "nih", n=64, size=64, seed=0))


def test_extraction_on_cuda_equals_the_cpu_within_bf16_rounding(dataset, tmp_path):
    from benchmark.pipelines.extract import extract
    from cache.embeddings import EmbeddingStore

    stores = {device: EmbeddingStore.open(extract("tiny-clip", dataset.manifest, dataset.root,
                                                  workdir=tmp_path / device, device=device, batch_size=16, workers=2))
              for device in ("cpu", "cuda")}
    cpu, gpu = (stores[d].image_embeddings().astype(np.float32) for d in ("cpu", "cuda"))
    cosine = np.sum(cpu * gpu, axis=1) / (np.linalg.norm(cpu, axis=1) * np.linalg.norm(gpu, axis=1))
    assert cosine.min() > 0.99, f"bf16 autocast drifted: cosine {cosine.min():.4f}"
    assert stores["cuda"].attrs["timings"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_fine_tuning_on_cuda_trains_with_autocast(tmp_path, precision):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from finetune_fakes import tiny_run  # noqa: E402

    result, model, probs = tiny_run(tmp_path / precision, epochs=2, precision=precision, device="cuda")
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert next(model.parameters()).device.type == "cuda"
