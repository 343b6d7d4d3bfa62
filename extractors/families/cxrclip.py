"""CXR-CLIP (You et al., MICCAI 2023): ResNet-50 or Swin-T image encoder, Bio_ClinicalBERT, linear projections.

Facts from the authors' code (kakaobrain/cxr-clip: cxrclip/model/clip.py, model/modules/*.py,
configs/model/clip_{resnet,swin}_clinical.yaml, data/data_utils.py, evaluator.py):
- image: torchvision resnet50 with `fc` deleted, the pooled 2048 features (`image_encoder.resnet.*`); or a
  Hugging Face SwinModel (`image_encoder.image_encoder.*`) whose embedding is `last_hidden_state[:, 0]` (the
  first token of the last stage, as `CXRClip.encode_image` takes it; Swin has no CLS token).
- text: Bio_ClinicalBERT (`text_encoder.text_encoder.*`), "eos" pooling: the hidden state at the last real
  token ([SEP], position attention_mask.sum - 1), prompts tokenised as one batch padded to the longest.
- projections: `image_projection.projection` Linear(2048 or 768, 512), `text_projection.projection`
  Linear(768, 512) (with bias); `logit_scale`.
- checkpoint: the released `.tar` is `torch.save({"model": ..., "optimizer": ..., "scheduler": ...,
  "config": <hydra DictConfig>, ...})`; only `model` is read (the config becomes an inert placeholder, see
  `extractors/lightning_checkpoint.py`, so no trust flag is needed). Swin keys saved with transformers 4.x are
  renamed to current names; stale buffers are dropped.
- preprocessing (test split): PIL RGB, `Resize(224)` (bilinear), `CenterCrop(224)`, ToTensor, Normalize(0.5, 0.5).
- zero-shot (`evaluator.zeroshot_binary`): per class the prompts "No {c}" and "{c}", softmax over the two
  cosines (no temperature), the probability of "{c}".
LoRA targets: ResNet "conv1", "conv2", "conv3"; Swin "q_proj", "k_proj", "v_proj", "o_proj".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.core.errors import BenchError
from extractors import Checkpoint
from extractors.base import Encoder
from extractors.clinical_bert import build_bert, build_clinical_bert_encoder, drop_legacy_buffers
from extractors.hf_keys import SWIN_4X_TO_5, rename_key_parts
from extractors.registry import EncoderSpec, family_setting
from extractors.resnet_backbone import BottleneckResNet
from extractors.weights import unwrap_state_dict


class ResNetImageEncoder(nn.Module):
    """`resnet.*`: torchvision ResNet without `fc`; the pooled features."""

    def __init__(self, resnet: dict):
        super().__init__()
        self.resnet = BottleneckResNet(resnet["blocks"], resnet["widths"], resnet["stem_width"])
        self.out_dim = self.resnet.feature_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.resnet(images)


class SwinImageEncoder(nn.Module):
    """`image_encoder.*`: a Hugging Face SwinModel; the first token of its last hidden state."""

    def __init__(self, swin: dict):
        super().__init__()
        from transformers import SwinConfig, SwinModel

        self.image_encoder = SwinModel(SwinConfig(**swin))
        self.out_dim = self.image_encoder.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(pixel_values=images).last_hidden_state[:, 0]


class TextEncoder(nn.Module):
    """`text_encoder.*`: the BERT; "eos" pooling (the last real token)."""

    def __init__(self, bert_config):
        super().__init__()
        self.text_encoder = build_bert(bert_config)
        self.out_dim = bert_config.hidden_size

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        hidden = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids).last_hidden_state
        last = attention_mask.sum(dim=-1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class Projection(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.projection = nn.Linear(in_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.projection(features)


class CxrClipModel(nn.Module):
    """The authors' module tree: `image_encoder`, `text_encoder`, `image_projection`, `text_projection`, `logit_scale`."""

    def __init__(self, image_encoder: nn.Module, text_encoder: TextEncoder, embed_dim: int):
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_projection = Projection(image_encoder.out_dim, embed_dim)
        self.text_projection = Projection(text_encoder.out_dim, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))


class ImageTower(nn.Module):
    """What fine-tuning trains: the image encoder and its projection."""

    def __init__(self, model: CxrClipModel):
        super().__init__()
        self.image_encoder = model.image_encoder
        self.image_projection = model.image_projection

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_projection(self.image_encoder(images))


class CxrClipEncoder(Encoder):
    def __init__(self, spec: EncoderSpec, model: CxrClipModel, tokenizer, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = model
        self.tokenizer = tokenizer
        self.tower = ImageTower(model)

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": self.tower(images)}

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(list(prompts), padding="longest", truncation=True,
                                max_length=self.spec.context_length, return_tensors="pt")
        tokens = {key: value.to(self.device) for key, value in tokens.items()}
        features = self.model.text_encoder(tokens["input_ids"], tokens["attention_mask"], tokens["token_type_ids"])
        return {"embedding": self.model.text_projection(features)}

    def image_tower(self) -> nn.Module:
        return self.tower


def build_model(spec: EncoderSpec, bert_config) -> CxrClipModel:
    vision = family_setting(spec, "vision")
    if vision == "resnet":
        image = ResNetImageEncoder(family_setting(spec, "resnet"))
    elif vision == "swin":
        image = SwinImageEncoder(family_setting(spec, "swin"))
    else:
        raise BenchError(f"encoder {spec.name!r}: extra.vision must be 'resnet' or 'swin', got {vision!r}.")
    return CxrClipModel(image, TextEncoder(bert_config), spec.image_embed_dim)


def official_state_dict(checkpoint: Checkpoint, model: CxrClipModel) -> dict[str, torch.Tensor]:
    """The `model` dict of a released `.tar` (or a bare state_dict), renamed / cleaned for a strict load."""
    state = unwrap_state_dict(checkpoint.content, path=checkpoint.path, keys=("model",))
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    state = rename_key_parts(state, SWIN_4X_TO_5, under="image_encoder.image_encoder.encoder.")
    return drop_legacy_buffers(state, model.state_dict().keys())[0]


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    return build_clinical_bert_encoder(
        spec, checkpoint, device,
        build_model=build_model, official_state_dict=official_state_dict, encoder_class=CxrClipEncoder,
    )
