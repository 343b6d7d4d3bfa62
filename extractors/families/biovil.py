"""BioViL (Boecking et al., ECCV 2022): ResNet-50 + 128-d projector, CXR-BERT text encoder with a 128-d projection.

The authors' package (hi-ml-multimodal) pins older torch and transformers than this project, so this is a thin
adapter on the same keys. Facts from its code (microsoft/hi-ml, hi-ml-multimodal/src/health_multimodal:
image/model/{model,encoder,modules}.py, text/model/modelling_cxrbert.py, image/data/{transforms,io}.py):
- image (`biovil_image_resnet50_proj_size_128.pt`, a plain state_dict): `encoder.encoder.*` a torchvision
  ResNet-50 (its unused `fc` included), `projector.model.{0,1,3}` = Conv1x1(2048, 128, no bias), BatchNorm2d,
  ReLU, Conv1x1(128, 128); the embedding (`projected_global_embedding`) is the spatial mean of the projected
  layer-4 map (not normalised here; the authors normalise before cosines).
- text (`pytorch_model.bin` of microsoft/BiomedVLP-CXR-BERT-specialized, beside the image file): `bert.*`
  (no pooler), `cls.predictions.*` (the masked-LM head: not used for embeddings, dropped by name), and
  `cls_projection_head.{dense_to_hidden, LayerNorm, dense_to_output}`: Linear(768, 128), GELU, LayerNorm,
  Linear(128, 128) on the [CLS] state (`get_projected_text_embeddings`).
- preprocessing (`create_chest_xray_transform_for_inference(512, 480)`): Resize(512) (bilinear), CenterCrop(480),
  ToTensor (0..1), grey repeated to 3 channels, no normalisation.
The weights digest covers both files. LoRA targets: "conv1", "conv2", "conv3".
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.core.schema import RANDOM_INIT
from extractors import Checkpoint
from extractors.base import Encoder, seeded_init
from extractors.clinical_bert import drop_legacy_buffers, load_bert_config, load_tokenizer
from extractors.registry import EncoderSpec, family_setting
from extractors.resnet_backbone import BottleneckResNet
from extractors.weights import read_checkpoint, sha256_of, strict_load, unwrap_state_dict

TEXT_WEIGHTS = "pytorch_model.bin"
MLM_HEAD_PREFIX = "cls.predictions."


class ResNetTrunk(nn.Module):
    """`encoder.*`: hi-ml's ResNet-50 (torchvision layout, `fc` kept as the file has it) -> the layer-4 map."""

    def __init__(self, resnet: dict):
        super().__init__()
        self.encoder = BottleneckResNet(resnet["blocks"], resnet["widths"], resnet["stem_width"])
        self.encoder.fc = nn.Linear(self.encoder.feature_channels, 1000)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.encoder.maxpool(self.encoder.relu(self.encoder.bn1(self.encoder.conv1(images))))
        return self.encoder.layer4(self.encoder.layer3(self.encoder.layer2(self.encoder.layer1(x))))


class Projector(nn.Module):
    """`model.*`: MLP with 1x1 convolutions (hi-ml `MLP(use_1x1_convs=True)`)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(in_dim, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim),
                                   nn.ReLU(inplace=True), nn.Conv2d(out_dim, out_dim, 1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class BiovilImageModel(nn.Module):
    def __init__(self, resnet: dict, embed_dim: int):
        super().__init__()
        self.encoder = ResNetTrunk(resnet)
        self.projector = Projector(self.encoder.encoder.feature_channels, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(images)).mean(dim=(2, 3))


class BiovilImageTower(nn.Module):
    """What fine-tuning trains: the trunk's layers and the projector, without the unused `fc` (same tensors)."""

    def __init__(self, image_model: BiovilImageModel):
        super().__init__()
        resnet = image_model.encoder.encoder
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layers = nn.Sequential(resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.projector = image_model.projector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.maxpool(self.relu(self.bn1(self.conv1(images)))))
        return self.projector(x).mean(dim=(2, 3))


class ProjectionHead(nn.Module):
    def __init__(self, hidden: int, size: int):
        super().__init__()
        self.dense_to_hidden = nn.Linear(hidden, size)
        self.LayerNorm = nn.LayerNorm(size, eps=1e-12)
        self.dense_to_output = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_to_output(self.LayerNorm(F.gelu(self.dense_to_hidden(x))))


class CxrBert(nn.Module):
    """`bert.*` (no pooler) and `cls_projection_head.*`, as CXRBertModel saves them (MLM head dropped)."""

    def __init__(self, bert_config, embed_dim: int):
        super().__init__()
        from transformers import BertModel

        self.bert = BertModel(bert_config, add_pooling_layer=False)
        self.cls_projection_head = ProjectionHead(bert_config.hidden_size, embed_dim)

    def forward(self, input_ids, attention_mask) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.cls_projection_head(hidden[:, 0])


class BiovilEncoder(Encoder):
    def __init__(self, spec, image_model, text_model, tokenizer, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = nn.ModuleDict({"image": image_model, "text": text_model})
        self.tokenizer = tokenizer
        self.tower = BiovilImageTower(image_model)

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": self.tower(images)}

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(list(prompts), padding="longest", truncation=True,
                                max_length=self.spec.context_length, return_tensors="pt")
        return {"embedding": self.model["text"](tokens["input_ids"].to(self.device),
                                                tokens["attention_mask"].to(self.device))}

    def image_tower(self) -> nn.Module:
        return self.tower


def text_weights_path(spec: EncoderSpec, checkpoint: Checkpoint):
    """CXR-BERT's `pytorch_model.bin` beside the image checkpoint; None for a tiny variant without one."""
    path = checkpoint.path.parent / TEXT_WEIGHTS
    if path.is_file():
        return path
    if spec.variant == "tiny":
        return None
    raise BenchError(
        f"encoder {spec.name!r}: CXR-BERT's {TEXT_WEIGHTS} must sit beside {checkpoint.path} (both are in the Hugging "
        f"Face repository microsoft/BiomedVLP-CXR-BERT-specialized, with its vocab.txt); put it there."
    )


def load_text_state(text_model: CxrBert, path) -> None:
    state = unwrap_state_dict(read_checkpoint(path), path=path)
    state = {key: value for key, value in state.items() if not key.startswith(MLM_HEAD_PREFIX)}
    strict_load(text_model, drop_legacy_buffers(state, text_model.state_dict().keys())[0], source=str(path))


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    bert_config = load_bert_config(family_setting(spec, "bert_config"))
    with seeded_init(spec.init_seed or 0):
        image_model = BiovilImageModel(family_setting(spec, "resnet"), spec.image_embed_dim)
        text_model = CxrBert(bert_config, spec.text_embed_dim)
    tag = digest = RANDOM_INIT
    if checkpoint is not None:
        strict_load(image_model, unwrap_state_dict(checkpoint.content, path=checkpoint.path), source=str(checkpoint.path))
        text_path = text_weights_path(spec, checkpoint)
        tag, digest = checkpoint.tag, checkpoint.digest
        if text_path is not None:
            load_text_state(text_model, text_path)
            digest = hashlib.sha256(f"{checkpoint.digest}+{sha256_of(text_path)}".encode()).hexdigest()
    tokenizer = load_tokenizer(family_setting(spec, "tokenizer"), near=checkpoint.path.parent if checkpoint else None)
    return BiovilEncoder(spec, image_model, text_model, tokenizer, weights_tag=tag, weights_digest=digest).to(device)
