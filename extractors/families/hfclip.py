"""CLIP models in the Hugging Face `CLIPModel` layout (PubMedCLIP's `flaviagiammarino/pubmed-clip-vit-base-patch32`).

Keys `vision_model.*`, `text_model.*`, `visual_projection.weight`, `text_projection.weight`, `logit_scale`
(checkpoints saved with older transformers also carry `text_model.embeddings.position_ids`, dropped). The
architecture is `extra.clip_config` (a transformers `CLIPConfig`: for PubMedCLIP, OpenAI's ViT-B/32 with
QuickGELU). Image embedding: the vision tower's pooled output through `visual_projection`; text embedding:
the text tower's pooled output (the end-of-text token) through `text_projection`, as `CLIPModel.get_*_features`.

Prompts are tokenised with open_clip's copy of OpenAI's BPE (the same vocabulary and merges as the
repository's `CLIPTokenizer`; the ids are identical for plain text, so no tokenizer files are needed).
The original PubMedCLIP release (OpenAI-key `state_dict`) loads through the openclip family instead
(`pubmedclip-openai`). LoRA targets: "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2".
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.core.schema import RANDOM_INIT
from extractors import Checkpoint
from extractors.base import Encoder, seeded_init
from extractors.clinical_bert import drop_legacy_buffers
from extractors.registry import EncoderSpec, family_setting
from extractors.weights import strict_load, unwrap_state_dict


class HfClipEncoder(Encoder):
    """A transformers CLIPModel behind the shared `Encoder` interface (embeddings raw, not normalised)."""

    def __init__(self, spec: EncoderSpec, model: nn.Module, tokenizer, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = model
        self.tokenizer = tokenizer

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.model.vision_model(pixel_values=images).pooler_output
        return {"embedding": self.model.visual_projection(pooled)}

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(list(prompts)).to(self.device)
        pooled = self.model.text_model(input_ids=tokens, attention_mask=(tokens != 0).long()).pooler_output
        return {"embedding": self.model.text_projection(pooled)}

    def image_tower(self) -> nn.Module:
        return self.model.vision_model


def build_model(spec: EncoderSpec) -> nn.Module:
    from transformers import CLIPConfig, CLIPModel

    settings = family_setting(spec, "clip_config")
    config = CLIPConfig(text_config=settings["text_config"], vision_config=settings["vision_config"],
                        projection_dim=settings["projection_dim"])
    if config.projection_dim != spec.image_embed_dim or config.projection_dim != spec.text_embed_dim:
        raise BenchError(f"encoder {spec.name!r}: projection_dim {config.projection_dim} must equal the spec's embedding sizes.")
    return CLIPModel(config)


def official_state_dict(checkpoint: Checkpoint, model: nn.Module) -> dict[str, torch.Tensor]:
    state = unwrap_state_dict(checkpoint.content, path=checkpoint.path, keys=("state_dict",))
    return drop_legacy_buffers(state, model.state_dict().keys())[0]


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    from open_clip.tokenizer import SimpleTokenizer

    with seeded_init(spec.init_seed or 0):
        model = build_model(spec)
    if checkpoint is not None:
        strict_load(model, official_state_dict(checkpoint, model), source=str(checkpoint.path))
        tag, digest = checkpoint.tag, checkpoint.digest
    else:
        tag = digest = RANDOM_INIT
    tokenizer = SimpleTokenizer(context_length=spec.context_length)
    return HfClipEncoder(spec, model, tokenizer, weights_tag=tag, weights_digest=digest).to(device)
