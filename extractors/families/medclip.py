"""MedCLIP (Wang et al., EMNLP 2022): ResNet-50 or Swin-tiny image tower, Bio_ClinicalBERT text tower.

Facts from the authors' code (RyanWangZf/MedCLIP, medclip/modeling_medclip.py, constants.py, dataset.py):
- image: torchvision resnet50 with `fc` = Linear(2048, 512, bias=False), or a Hugging Face Swin-tiny
  (`microsoft/swin-tiny-patch4-window7-224`) whose `pooler_output` (768) goes through
  `projection_head` = Linear(768, 512, bias=False); a 1-channel input is repeated to 3 channels in forward.
- text: Bio_ClinicalBERT; the embedding is the mean over layers {hidden_states[1], hidden_states[2],
  hidden_states[-1]} and over tokens, then `projection_head` = Linear(768, 512, bias=False).
- `logit_scale` (init log(1/0.07)), clamped to [0, 4.6052] before exp.
- checkpoint `pytorch_model.bin` (inside medclip-pretrained.zip / medclip-vit-pretrained.zip) with keys
  `vision_model.model.*`, `vision_model.projection_head.weight` (ViT), `text_model.model.*`,
  `text_model.projection_head.weight`, `logit_scale`.
- preprocessing: grey, pad to square, 224 bicubic, centre crop 224, /255, mean .5862785803043838,
  std .27950088968644304 (one channel).

Loading differences we handle: the official file was saved with transformers 4.x, so it holds buffers that
current transformers no longer saves (`embeddings.position_ids`, MedCLIP#37; Swin `relative_position_index`)
-- they are dropped -- and Swin parameters under their 4.x names (`attention.self.query`, ...), which are
renamed to the current ones (`attention.q_proj`, ...). Every other key must match exactly.

Text embeddings, two ways (both stored by `bench extract`, as prompt sets; `spec.extra.promptset_encodings`):
- "default" (`class-batch`): what the authors' zero-shot classifier computes. `process_class_prompts`
  tokenises each class's prompts as one batch padded to its longest prompt, and the text embedding averages
  the hidden states over every position, padding included, so a prompt's embedding depends on the prompts of
  its class. `bench fit-heads --heads zeroshot` uses this set unless told otherwise.
- "per-prompt" (`each-prompt`): each prompt encoded on its own (the mean over its real tokens, which is the
  authors' value for a batch of one), independent of batching: `bench fit-heads --promptset per-prompt`.
`encode_text` (used outside prompt sets) is the per-prompt embedding.

LoRA targets: ResNet "conv1", "conv2", "conv3" (every bottleneck conv, and the stem conv1); Swin (current
transformers names) "q_proj", "k_proj", "v_proj", "o_proj".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.core.errors import BenchError
from extractors import Checkpoint
from extractors.base import Encoder
from extractors.hf_keys import SWIN_4X_TO_5, rename_key_parts
from extractors.clinical_bert import build_bert, build_clinical_bert_encoder, drop_legacy_buffers
from extractors.registry import EncoderSpec, family_setting
from extractors.resnet_backbone import BottleneckResNet
from extractors.weights import unwrap_state_dict

LOGIT_SCALE_INIT = 1 / 0.07
TEXT_LAYERS = (1, 2, -1)
"""hidden_states indices MedCLIP averages for its text embedding (embeddings output is index 0)."""

SWIN_RENAMES_FROM_TRANSFORMERS_4 = SWIN_4X_TO_5
"""Swin parameter names in checkpoints saved with transformers 4.x -> current names (`extractors.hf_keys`)."""


class MedClipTextModel(nn.Module):
    """BERT + bias-free projection; keys `model.*`, `projection_head.weight` as in the official file."""

    def __init__(self, bert_config, embed_dim: int):
        super().__init__()
        self.model = build_bert(bert_config)
        self.projection_head = nn.Linear(bert_config.hidden_size, embed_dim, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, include_padding: bool = False):
        """Projected text embeddings; the token mean covers the padding too when `include_padding` (the
        authors' batched zero-shot), else the real tokens only."""
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        layers = torch.stack([output.hidden_states[index] for index in TEXT_LAYERS]).mean(0)  # [P, T, H]
        if include_padding:
            return self.projection_head(layers.mean(1))
        mask = attention_mask.unsqueeze(-1).to(layers.dtype)
        pooled = (layers * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.projection_head(pooled)


class MedClipResNetVision(nn.Module):
    """torchvision ResNet whose `fc` is the bias-free projection; keys `model.*` (fc included)."""

    def __init__(self, embed_dim: int, *, blocks, widths, stem_width: int):
        super().__init__()
        self.model = BottleneckResNet(blocks, widths, stem_width)
        self.model.fc = nn.Linear(self.model.feature_channels, embed_dim, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return self.model(images)


class MedClipSwinVision(nn.Module):
    """Hugging Face SwinModel + bias-free projection of its pooled output; keys `model.*`, `projection_head.*`."""

    def __init__(self, embed_dim: int, swin_config: dict):
        super().__init__()
        from transformers import SwinConfig, SwinModel

        config = SwinConfig(**swin_config)
        self.model = SwinModel(config, add_pooling_layer=True)
        self.projection_head = nn.Linear(self.model.num_features, embed_dim, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return self.projection_head(self.model(pixel_values=images).pooler_output)


class MedClipModel(nn.Module):
    """`vision_model`, `text_model`, `logit_scale`: the official module tree and state_dict layout."""

    def __init__(self, vision_model: nn.Module, text_model: MedClipTextModel):
        super().__init__()
        self.vision_model = vision_model
        self.text_model = text_model
        self.logit_scale = nn.Parameter(torch.tensor(math.log(LOGIT_SCALE_INIT)))


class MedClipEncoder(Encoder):
    """MedCLIP behind the shared `Encoder` interface (embeddings raw, not L2-normalised)."""

    def __init__(self, spec: EncoderSpec, model: MedClipModel, tokenizer, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = model
        self.tokenizer = tokenizer

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": self.model.vision_model(images)}

    def encode_text(self, prompts: list[str], *, include_padding: bool = False) -> dict[str, torch.Tensor]:
        """Text embeddings of `prompts` tokenised as one batch (padded to the longest); see the module
        docstring for `include_padding`."""
        tokens = self.tokenizer(
            list(prompts),
            padding=True,
            truncation=True,
            max_length=self.spec.context_length,
            return_tensors="pt",
        )
        input_ids = tokens["input_ids"].to(self.device)
        attention_mask = tokens["attention_mask"].to(self.device)
        return {"embedding": self.model.text_model(input_ids, attention_mask, include_padding=include_padding)}

    def encode_prompt_set(self, encoding: str, prompts: list[str], classes: list[str]) -> dict[str, torch.Tensor]:
        """"class-batch": each class's prompts as one padded batch, mean over every position (the authors'
        `process_class_prompts` + `PromptClassifier`); "each-prompt": the per-prompt embedding."""
        if encoding == "each-prompt":
            parts = [self.encode_text(prompts[first : first + 256])["embedding"] for first in range(0, len(prompts), 256)]
            return {"embedding": torch.cat(parts) if parts else torch.zeros(0, self.spec.text_embed_dim)}
        if encoding != "class-batch":
            raise BenchError(f"encoder {self.spec.name!r}: unknown prompt-set encoding {encoding!r}; fix the spec.")
        embeddings, first = [], 0
        while first < len(prompts):
            last = first
            while last < len(prompts) and classes[last] == classes[first]:
                last += 1
            embeddings.append(self.encode_text(prompts[first:last], include_padding=True)["embedding"])
            first = last
        return {"embedding": torch.cat(embeddings) if embeddings else torch.zeros(0, self.spec.text_embed_dim)}

    def image_tower(self) -> nn.Module:
        return self.model.vision_model


def build_model(spec: EncoderSpec, bert_config) -> MedClipModel:
    """The MedCLIP module tree for `spec` (`extra.vision` "resnet" or "swin"), randomly initialised."""
    vision = family_setting(spec, "vision")
    if vision == "resnet":
        resnet = family_setting(spec, "resnet")
        vision_model = MedClipResNetVision(
            spec.image_embed_dim,
            blocks=resnet["blocks"],
            widths=resnet["widths"],
            stem_width=resnet["stem_width"],
        )
    elif vision == "swin":
        vision_model = MedClipSwinVision(spec.image_embed_dim, family_setting(spec, "swin"))
    else:
        raise BenchError(f"encoder {spec.name!r}: extra.vision must be 'resnet' or 'swin', got {vision!r}.")
    return MedClipModel(vision_model, MedClipTextModel(bert_config, spec.text_embed_dim))


def rename_transformers4_swin_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Swin keys under `vision_model.model.encoder.` from their transformers 4.x names to current names."""
    return rename_key_parts(state_dict, SWIN_4X_TO_5, under="vision_model.model.encoder.")


def official_state_dict(checkpoint: Checkpoint, model: MedClipModel) -> dict[str, torch.Tensor]:
    """The official `pytorch_model.bin` tensors, renamed / cleaned for a strict load into `model`."""
    state = unwrap_state_dict(checkpoint.content, path=checkpoint.path, keys=("state_dict",))
    state = rename_transformers4_swin_keys(state)
    state, _dropped = drop_legacy_buffers(state, model.state_dict().keys())
    return state


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    return build_clinical_bert_encoder(
        spec, checkpoint, device,
        build_model=build_model, official_state_dict=official_state_dict, encoder_class=MedClipEncoder,
    )
