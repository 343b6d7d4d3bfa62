"""The LoRA target names each spec documents hit modules of its image tower, and LoRA weights train (peft)."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model

from extractors import load_encoder
from extractors.registry import REGISTRY

TINY = sorted(name for name, spec in REGISTRY.items() if spec.variant == "tiny")


@pytest.mark.parametrize("name", TINY)
def test_lora_targets_hit_the_image_tower_and_train(name):
    encoder = load_encoder(name)
    tower = encoder.image_tower()
    leaf_names = {module_name.rsplit(".", 1)[-1] for module_name, _ in tower.named_modules()}
    missing = [target for target in encoder.lora_targets if target not in leaf_names]
    assert not missing, f"{name}: LoRA targets {missing} match no module of the image tower"

    tower = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=encoder.lora_targets), tower)
    lora = {key: p for key, p in tower.named_parameters() if "lora_" in key}
    assert lora and all(p.requires_grad for p in lora.values())
    for target in encoder.lora_targets:
        assert any(f".{target}.lora_" in f".{key}" for key in lora), f"{name}: no LoRA weights on {target!r}"
    tower.train()
    generator = torch.Generator().manual_seed(0)
    size = encoder.pixel_size
    pixels = torch.randint(0, 256, (4, size, size), dtype=torch.uint8, generator=generator)
    before = {key: p.detach().clone() for key, p in lora.items()}
    optimiser = torch.optim.SGD(lora.values(), lr=0.5)
    for _ in range(2):  # lora_B starts at zero, so lora_A only moves from the second step
        loss = encoder.encode_image(encoder.preprocess(pixels))["embedding"].pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    changed = [key for key, p in lora.items() if not torch.equal(p.detach(), before[key])]
    with_gradient = [key for key, p in lora.items() if p.grad is not None and p.grad.abs().sum() > 0]
    for target in encoder.lora_targets:  # every target gets gradients (both LoRA factors) and its B factor moves
        for factor in ("lora_A", "lora_B"):
            assert any(f".{target}.{factor}" in f".{key}" for key in with_gradient), f"{name}: no gradient on {target} {factor}"
        assert any(f".{target}.lora_B" in f".{key}" for key in changed), f"{name}: {target} did not train"
