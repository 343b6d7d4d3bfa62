"""RAD-DINO (Pérez-García et al., Nature Machine Intelligence 2025): DINOv2 ViT-B/14 trained on chest X-rays.

Facts from the authors' release (Hugging Face `microsoft/rad-dino`: config.json, preprocessor_config.json,
model card): a transformers `Dinov2Model` (hidden 768, 12 layers, 12 heads, patch 14, 518 px, layer scale,
no register tokens); the image processor resizes the shortest edge to 518 (bicubic), centre-crops 518,
rescales to [0, 1] and normalises with mean 0.5307 / std 0.2583 on 3 channels. The model card's embedding is
`pooler_output`, the layer-normed CLS token; the layer-normed patch tokens (`last_hidden_state[:, 1:]`) are the
dense features. `extra.pooling` chooses "cls" (the card's) or "patch-mean" (the mean of the patch tokens).

Vision only: there is no text tower, so there are no prompt sets and no zero-shot head
(`encode_text` refuses in one line). The released `model.safetensors` was saved with transformers 4.x
(`attention.attention.query` ...); its keys are renamed to current names (`attention.q_proj` ...) before the
strict load. LoRA targets (current names): "q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2".
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.core.schema import RANDOM_INIT
from extractors import Checkpoint
from extractors.base import Encoder, seeded_init
from extractors.hf_keys import DINOV2_4X_TO_5, rename_key_parts
from extractors.registry import EncoderSpec, family_setting
from extractors.weights import strict_load, unwrap_state_dict

POOLINGS = ("cls", "patch-mean")


class VisionOnlyEncoder(Encoder):
    """An image encoder without a text tower: every text method refuses with one line saying why."""

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        raise BenchError(no_text_tower_message(self.spec))


def no_text_tower_message(spec: EncoderSpec) -> str:
    return (
        f"encoder {spec.name!r} has no text tower (vision only), so it has no prompt embeddings and no zero-shot "
        "head; use --heads linear,mlp or fine-tuning."
    )


class RadDinoEncoder(VisionOnlyEncoder):
    """A transformers Dinov2Model; the embedding is its CLS token or the mean of its patch tokens."""

    def __init__(self, spec: EncoderSpec, model: nn.Module, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = model
        self.pooling = family_setting(spec, "pooling")
        if self.pooling not in POOLINGS:
            raise BenchError(f"encoder {spec.name!r}: extra.pooling must be one of {list(POOLINGS)}, got {self.pooling!r}.")

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.model(pixel_values=images).last_hidden_state  # layer-normed, CLS first
        embedding = tokens[:, 0] if self.pooling == "cls" else tokens[:, 1:].mean(1)
        return {"embedding": embedding}

    def image_tower(self) -> nn.Module:
        return self.model


def build_model(spec: EncoderSpec) -> nn.Module:
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(**family_setting(spec, "dinov2"))
    if config.hidden_size != spec.image_embed_dim:
        raise BenchError(
            f"encoder {spec.name!r}: image_embed_dim={spec.image_embed_dim} but the DINOv2 hidden size is "
            f"{config.hidden_size}; fix the spec."
        )
    return Dinov2Model(config)


def official_state_dict(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """`model.safetensors` of microsoft/rad-dino (transformers 4.x names, or current ones), for a strict load."""
    state = unwrap_state_dict(checkpoint.content, path=checkpoint.path, keys=("state_dict",))
    return rename_key_parts(state, DINOV2_4X_TO_5, under="encoder.layer.")


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    with seeded_init(spec.init_seed or 0):
        model = build_model(spec)
    if checkpoint is not None:
        strict_load(model, official_state_dict(checkpoint), source=str(checkpoint.path))
        tag, digest = checkpoint.tag, checkpoint.digest
    else:
        tag = digest = RANDOM_INIT
    return RadDinoEncoder(spec, model, weights_tag=tag, weights_digest=digest).to(device)
