"""BiomedCLIP through open_clip: a timm ViT image tower and a Hugging Face BERT text tower.

The model config (`extra.model_config`) is the one the authors publish as `open_clip_config.json`
(`model_cfg`): timm `vit_base_patch16_224` with a linear head (`visual.trunk.*`, `visual.head.proj.weight`),
BiomedBERT with an MLP projection and CLS pooling (`text.transformer.*`, `text.proj.0/2.weight`), context 256.
Everything is built offline with `pretrained=False` towers, then the checkpoint is loaded strictly.

The BERT tower needs two local folders, never the network:
  - its `config.json`: the folder holding the weights if it has one, else the copy shipped in
    `extractors/assets/` (`extra.text_config`);
  - its tokenizer (`vocab.txt`, `tokenizer_config.json`): the folder holding the weights (a Hugging Face
    snapshot of the BiomedCLIP repository has them), else the shipped folder (tiny variants).

LoRA targets (timm ViT): "qkv", "proj", "fc1", "fc2" -- note "proj" also matches `visual.head.proj`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from benchmark.core.errors import BenchError
from extractors import Checkpoint
from benchmark.core.schema import RANDOM_INIT
from extractors.base import Encoder
from extractors.families.openclip import OpenClipEncoder, build_open_clip_model, openai_state_dict
from extractors.registry import EncoderSpec
from extractors.weights import strict_load

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json")
STALE_BUFFERS = ("text.transformer.embeddings.position_ids",)
"""A buffer older transformers versions saved in checkpoints and newer ones no longer keep (MedCLIP#37)."""


def _packaged(spec: EncoderSpec, key: str) -> Path:
    name = spec.extra.get(key)
    if not name:
        raise BenchError(f"encoder {spec.name!r}: spec needs `extra.{key}` (a folder under {ASSETS}).")
    return ASSETS / name


def _is_bert_config(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == "bert"
    except (OSError, ValueError, AttributeError):
        return False


def text_config_dir(spec: EncoderSpec, checkpoint: Checkpoint | None) -> Path:
    """Folder with the BERT `config.json`: next to the weights if it is a BERT config, else the shipped copy.

    (Recent revisions of the BiomedCLIP repository put a `config.json` for their transformers remote-code port
    beside the weights; that one describes the whole CLIP model, not the BERT tower, and is not used.)
    """
    if checkpoint is not None and _is_bert_config(checkpoint.path.parent / "config.json"):
        return checkpoint.path.parent
    folder = _packaged(spec, "text_config")
    if not (folder / "config.json").is_file():
        raise BenchError(f"encoder {spec.name!r}: {folder / 'config.json'} is missing from the installation.")
    return folder


def tokenizer_dir(spec: EncoderSpec, checkpoint: Checkpoint | None) -> Path:
    """Folder with the BERT tokenizer files: next to the weights, else the shipped folder (tiny variants)."""
    candidates = []
    if checkpoint is not None:
        candidates.append(checkpoint.path.parent)
    if spec.extra.get("tokenizer_dir"):
        candidates.append(_packaged(spec, "tokenizer_dir"))
    for folder in candidates:
        if all((folder / name).is_file() for name in TOKENIZER_FILES):
            return folder
    looked = ", ".join(str(c) for c in candidates) or "nowhere (no weights folder)"
    raise BenchError(
        f"encoder {spec.name!r}: tokenizer files {list(TOKENIZER_FILES)} not found (looked in {looked}). "
        f"Put them next to the weights file; they are published with the weights in "
        f"{spec.weights[0].published_at if spec.weights else 'the model repository'}."
    )


def model_config(spec: EncoderSpec, text_config: Path) -> dict:
    """The open_clip model config of `spec`, its BERT tower built from the `config.json` in `text_config`."""
    config = spec.extra.get("model_config")
    if config is None:
        raise BenchError(f"encoder {spec.name!r}: spec needs `extra.model_config` (BiomedCLIP's model_cfg).")
    config = copy.deepcopy(config)
    if config.get("embed_dim") != spec.image_embed_dim:
        raise BenchError(
            f"encoder {spec.name!r}: image_embed_dim={spec.image_embed_dim} but model_config embed_dim="
            f"{config.get('embed_dim')}; fix the spec."
        )
    text = config["text_cfg"]
    text["hf_model_name"] = str(text_config)
    text["hf_tokenizer_name"] = str(text_config)  # not used by the model; the tokenizer is built separately
    text["hf_model_pretrained"] = False
    config["vision_cfg"]["timm_model_pretrained"] = False
    return config


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    from open_clip.tokenizer import HFTokenizer

    tokenizer_folder = tokenizer_dir(spec, checkpoint)
    model = build_open_clip_model(model_config(spec, text_config_dir(spec, checkpoint)), seed=spec.init_seed or 0)
    if checkpoint is not None:
        state = openai_state_dict(checkpoint)
        expected = model.state_dict()
        state = {k: v for k, v in state.items() if not (k in STALE_BUFFERS and k not in expected)}
        strict_load(model, state, source=str(checkpoint.path))
        tag, digest = checkpoint.tag, checkpoint.digest
    else:
        tag = digest = RANDOM_INIT
    tokenizer = HFTokenizer(str(tokenizer_folder), context_length=spec.context_length)
    encoder = OpenClipEncoder(spec, model, tokenizer, weights_tag=tag, weights_digest=digest)
    return encoder.to(device)

