"""Every tiny (random-init) encoder in the registry honours the Encoder interface of docs/CONTRACTS.md."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.errors import BenchError
from extractors import load_encoder
from benchmark.core.schema import RANDOM_INIT
from extractors.prompts import prompt_set
from extractors.registry import REGISTRY

TINY = sorted(name for name, spec in REGISTRY.items() if spec.variant == "tiny")


def pixels(spec, batch=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    size = spec.preprocess.pixel_size
    return torch.randint(0, 256, (batch, size, size), dtype=torch.uint8, generator=generator)


def test_registry_has_tiny_variants_of_the_clip_families():
    assert {"tiny-clip", "tiny-clip-rn", "tiny-chexzero", "tiny-biomedclip"} <= set(TINY)


@pytest.mark.parametrize("name", TINY)
def test_tiny_encoder_interface(name):
    rng_before = torch.random.get_rng_state()
    encoder = load_encoder(name)
    assert torch.equal(torch.random.get_rng_state(), rng_before), "building must not touch the global RNG"
    spec = REGISTRY[name]
    assert encoder.weights_tag == RANDOM_INIT and encoder.weights_digest == RANDOM_INIT
    assert encoder.pixel_size == spec.preprocess.pixel_size
    assert not encoder.training
    assert not any(parameter.requires_grad for parameter in encoder.parameters())
    assert encoder.lora_targets == list(spec.lora_targets)

    images = encoder.preprocess(pixels(spec))
    assert images.dtype == torch.float32 and images.ndim == 4 and images.shape[0] == 3
    with torch.inference_mode():
        image_out = encoder.encode_image(images)
    embedding = image_out["embedding"]
    assert embedding.shape == (3, encoder.embed_dim) and embedding.dtype == torch.float32
    assert torch.isfinite(embedding).all()
    assert not torch.allclose(embedding[0], embedding[1]), "different images must embed differently"
    assert isinstance(encoder.image_tower(), torch.nn.Module)
    if spec.zeroshot.ensemble == "none":  # vision only: text refused in one line
        with pytest.raises(BenchError, match="no text tower") as error:
            encoder.encode_text(["edema"])
        assert "\n" not in str(error.value)
        return
    with torch.inference_mode():
        prompts = [p.text for p in prompt_set(spec, ["Edema", "No_Finding"])]
        text_out = encoder.encode_text(prompts)
    assert text_out["embedding"].shape == (len(prompts), spec.text_embed_dim)
    assert torch.isfinite(text_out["embedding"]).all()


@pytest.mark.parametrize("name", TINY)
def test_tiny_encoder_is_deterministic(name):
    first, second = load_encoder(name), load_encoder(name)
    state_a, state_b = first.state_dict(), second.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)
    batch = pixels(REGISTRY[name], seed=1)
    with torch.inference_mode():
        a = first.encode_image(first.preprocess(batch))["embedding"]
        b = second.encode_image(second.preprocess(batch))["embedding"]
    assert torch.equal(a, b)
