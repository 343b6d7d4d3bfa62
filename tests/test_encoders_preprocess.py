"""Preprocessing from the uint8 pixel store, checked against the published pipelines' arithmetic."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.errors import BenchError
from extractors.preprocess import apply_preprocess
from extractors.registry import get_spec

OPENAI_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
OPENAI_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])


def constant(value, size, batch=2):
    return torch.full((batch, size, size), value, dtype=torch.uint8)


def test_clip_pipeline_repeats_grey_then_normalises_each_channel():
    spec = get_spec("clip-vit-b16").preprocess
    out = apply_preprocess(spec, constant(255, 224))
    assert out.shape == (2, 3, 224, 224) and out.dtype == torch.float32
    expected = (1.0 - OPENAI_MEAN) / OPENAI_STD
    assert torch.allclose(out[0, :, 5, 5], expected, atol=1e-6)


def test_chexzero_pipeline_normalises_on_0_255_then_resizes_320_to_224():
    spec = get_spec("chexzero").preprocess
    pixels = constant(128, 320)
    pixels[:, :, :160] = 0
    out = apply_preprocess(spec, pixels)
    assert out.shape == (2, 3, 224, 224)
    assert torch.allclose(out[0, 0, 10, 200], torch.tensor((128 - 101.48761) / 83.43944), atol=1e-4)
    assert torch.allclose(out[0, 0, 10, 10], torch.tensor((0 - 101.48761) / 83.43944), atol=1e-4)


def test_wrong_pixel_store_size_or_dtype_is_a_clear_error():
    spec = get_spec("clip-vit-b16").preprocess
    with pytest.raises(BenchError, match="reads 224x224 pixel stores, got 64x64; build the pixel store at size 224"):
        apply_preprocess(spec, constant(0, 64))
    with pytest.raises(BenchError, match=r"expects a uint8 batch \[B, S, S\]"):
        apply_preprocess(spec, torch.zeros(2, 224, 224))
