"""OpenAI-layout CLIP models through open_clip: CLIP ViT-B/16, ViT-B/32, RN50, RN50x4, CheXzero, tiny-clip.

The architecture is an open_clip model config: a built-in name (`spec.architecture`, always a `-quickgelu`
config for OpenAI weights: the plain `ViT-B-16` config uses GELU, which silently degrades OpenAI weights) or,
for tiny variants, an inline `extra.model_config` with the same structure. Both go through
`open_clip.model.CLIP` (or `CustomTextCLIP` for a Hugging Face text tower), so tiny and official models share
code and key layout (`visual.*`, `transformer.*`, `token_embedding.weight`, `positional_embedding`,
`ln_final.*`, `text_projection`, `logit_scale`).

LoRA targets (peft), per spec: ViT towers "attn" (nn.MultiheadAttention), "c_fc", "c_proj" -- not "out_proj"
(peft ignores it inside MultiheadAttention); ModifiedResNet towers "conv1", "conv2", "conv3" (Conv2d). Not the
attention pool's q/k/v/c_proj: open_clip passes their weights straight to F.multi_head_attention_forward, so
LoRA wrappers on them would never run.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from benchmark.core.errors import BenchError
from extractors import Checkpoint
from benchmark.core.schema import RANDOM_INIT
from extractors.base import Encoder, seeded_init
from extractors.registry import EncoderSpec
from extractors.weights import strict_load, unwrap_state_dict

OPENAI_NON_TENSOR_KEYS = ("input_resolution", "context_length", "vocab_size")
"""Entries of OpenAI's original checkpoints that are metadata, not parameters (open_clip drops them too)."""


def model_config(spec: EncoderSpec) -> dict[str, Any]:
    """The open_clip model config for `spec`: inline `extra.model_config`, else the built-in one."""
    inline = spec.extra.get("model_config")
    if inline is not None:
        config = copy.deepcopy(inline)
    else:
        import open_clip

        config = open_clip.get_model_config(spec.architecture)
        if config is None:
            raise BenchError(
                f"encoder {spec.name!r}: open_clip has no model config {spec.architecture!r}; "
                "fix `architecture` in the spec or give `extra.model_config`."
            )
        config = copy.deepcopy(config)
    if config.get("embed_dim") != spec.image_embed_dim:
        raise BenchError(
            f"encoder {spec.name!r}: spec says image_embed_dim={spec.image_embed_dim} but the model config "
            f"has embed_dim={config.get('embed_dim')}; fix the spec."
        )
    return config


def build_open_clip_model(config: dict[str, Any], *, seed: int) -> nn.Module:
    """Instantiate an open_clip CLIP / CustomTextCLIP from a config dict, with a seeded random init."""
    from open_clip.model import CLIP, CustomTextCLIP

    config = dict(config)
    custom_text = bool(config.pop("custom_text", False)) or "hf_model_name" in config.get("text_cfg", {})
    model_class = CustomTextCLIP if custom_text else CLIP
    with seeded_init(seed):
        return model_class(**config)


def ungate_residual_branches(model: nn.Module) -> None:
    """Random-init only: set the zero-initialised last BatchNorm scale of each ResNet branch to one.

    open_clip (like OpenAI) initialises every `bn3.weight` of ModifiedResNet to zero, so an untrained
    branch outputs nothing and its convolutions get no gradient. Pretrained weights never look like that;
    a random-init stand-in that ignored its residual convs would make LoRA and fine-tuning tests vacuous.
    """
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bn3.weight") and not parameter.any():
                parameter.fill_(1.0)


def openai_state_dict(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """The model's tensors from an open_clip / OpenAI / CheXzero checkpoint (plain state_dict layout).

    Accepts a bare state_dict, one wrapped under "state_dict", or one saved from DataParallel ("module."
    on every key); drops OpenAI's metadata entries. Nothing else is renamed or dropped.
    """
    content = checkpoint.content
    if isinstance(content, dict):
        content = {k: v for k, v in content.items() if k not in OPENAI_NON_TENSOR_KEYS}
    state = unwrap_state_dict(content, path=checkpoint.path, keys=("state_dict",))
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return {key: value for key, value in state.items() if key not in OPENAI_NON_TENSOR_KEYS}


class OpenClipEncoder(Encoder):
    """An open_clip CLIP model with its tokenizer."""

    def __init__(self, spec: EncoderSpec, model: nn.Module, tokenizer, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = model
        self.tokenizer = tokenizer

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": self.model.encode_image(images)}

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(list(prompts)).to(self.device)
        return {"embedding": self.model.encode_text(tokens)}

    def image_tower(self) -> nn.Module:
        return self.model.visual


def clip_tokenizer(spec: EncoderSpec):
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=spec.context_length)


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    model = build_open_clip_model(model_config(spec), seed=spec.init_seed or 0)
    if checkpoint is not None:
        strict_load(model, openai_state_dict(checkpoint), source=str(checkpoint.path))
        tag, digest = checkpoint.tag, checkpoint.digest
    else:
        ungate_residual_branches(model)
        tag = digest = RANDOM_INIT
    encoder = OpenClipEncoder(spec, model, clip_tokenizer(spec), weights_tag=tag, weights_digest=digest)
    return encoder.to(device)
