"""GLoRIA (Huang et al., ICCV 2021): ResNet-50 image encoder with global and local embeddings, Bio_ClinicalBERT.

Facts from the authors' code (marshuang80/gloria: gloria/models/vision_model.py, text_model.py,
cnn_backbones.py, gloria_model.py, loss/gloria_loss.py, gloria.py, configs/chexpert_pretrain_config.yaml):
- image: torchvision resnet50 with `fc` = Identity; input upsampled to 299 (bilinear, align_corners=True);
  global embedding = `global_embedder` Linear(2048, 768) (bias) on the average-pooled layer4 output;
  local embeddings = `local_embedder` Conv2d(1024, 768, 1x1, no bias) on the layer3 map (19 x 19 at 299 px).
- text: Bio_ClinicalBERT, text lower-cased and reduced to `\\w+` words, padded/truncated to 97 tokens;
  the last 4 hidden layers are stacked; word pieces ('##') are merged into words by summing, up to [SEP];
  word embeddings = sum over the 4 layers; sentence embedding = mean over the 97 word slots (zero slots after
  [SEP] included), summed over the 4 layers. No projection, no normalisation (config norm: false).
- checkpoint: PyTorch Lightning `chexpert_resnet50.ckpt`: `state_dict` with keys `gloria.img_encoder.*`,
  `gloria.text_encoder.*`, and `hyper_parameters` (a pickled OmegaConf config, read as inert placeholders by
  `extractors.lightning_checkpoint`, so no --trust-checkpoint and no omegaconf are needed).
- zero-shot (gloria.py zero_shot_classification): per prompt, (global cosine + local similarity) / 2; per
  class the max over its prompts; then each class column is z-scored over the batch of images.

`encode_text` returns per prompt `"words"` [P, 97, D] laid out as the authors' aggregation leaves them:
slot 0 = [CLS], slots 1..n = the n words, slot n+1 = [SEP], zeros after; `"word_mask"` [P, 97] marks the n
words. LoRA targets: "conv1", "conv2", "conv3" (ResNet bottleneck convs and the stem conv1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import BenchError
from extractors import Checkpoint
from extractors.base import Encoder
from extractors.gloria_text import clean_text
from extractors.clinical_bert import build_bert, build_clinical_bert_encoder, drop_legacy_buffers
from extractors.registry import EncoderSpec, family_setting
from extractors.resnet_backbone import BottleneckResNet
from extractors.weights import unwrap_state_dict

CHECKPOINT_PREFIX = "gloria."
TEXT_LAST_LAYERS = 4
ATTENTION_TEMPERATURE = 4.0
"""temp1: sharpness of the word -> image-region attention (gloria_model.get_local_similarities)."""
WORD_TEMPERATURE = 5.0
"""temp2: scale of the word-context cosine before the max over words (log(exp(5 * cos)) = 5 * cos)."""




class GloriaImageEncoder(nn.Module):
    """ResNet + global and local embedders; keys `model.*`, `global_embedder.*`, `local_embedder.weight`.

    `forward` returns the global embedding (what fine-tuning trains); `global_and_local` returns both.
    """

    def __init__(self, embed_dim: int, *, blocks, widths, stem_width: int):
        super().__init__()
        self.model = BottleneckResNet(blocks, widths, stem_width)
        self.global_embedder = nn.Linear(self.model.feature_channels, embed_dim)
        self.local_embedder = nn.Conv2d(self.model.layer3_channels, embed_dim, kernel_size=1, bias=False)

    def global_and_local(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images -> (global [B, D], local [B, h*w, D]) (local regions in row-major order)."""
        local_features, pooled = self.model.layer3_and_pooled(images)
        local = self.local_embedder(local_features).flatten(2).transpose(1, 2)
        return self.global_embedder(pooled), local

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.global_and_local(images)[0]


class GloriaTextEncoder(nn.Module):
    """The BERT of GLoRIA's BertEncoder; key prefix `model.*` as in the official checkpoint."""

    def __init__(self, bert_config):
        super().__init__()
        self.model = build_bert(bert_config)

    def forward(self, input_ids, attention_mask, token_type_ids, word_index, word_count):
        """Token ids [P, T] -> (words [P, T, H], sentence [P, H]).

        `word_index` [P, T] maps each token to its word slot (-1 for tokens after [SEP]); `word_count` is T,
        the number of word slots the sentence mean divides by (the authors' zero slots included).
        """
        output = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
        )
        tokens = torch.stack(output.hidden_states[-TEXT_LAST_LAYERS:]).sum(0)  # [P, T, H], layers summed
        words = torch.zeros_like(tokens)
        keep = word_index >= 0
        slot = word_index.clamp(min=0).unsqueeze(-1).expand_as(tokens)
        words.scatter_add_(1, slot, tokens * keep.unsqueeze(-1).to(tokens.dtype))
        return words, words.sum(1) / word_count


class GloriaModel(nn.Module):
    """`img_encoder`, `text_encoder`: the module tree under the checkpoint's `gloria.` prefix."""

    def __init__(self, img_encoder: GloriaImageEncoder, text_encoder: GloriaTextEncoder):
        super().__init__()
        self.img_encoder = img_encoder
        self.text_encoder = text_encoder


def clean_prompt(text: str) -> str:
    """The authors' text cleaning (GLoRIA.process_text, see `extractors.gloria_text`): sentences of one word
    are dropped, so a one-word prompt becomes empty (and is refused by `encode_text`)."""
    return clean_text(text)


def word_slots(tokens: list[str]) -> tuple[list[int], int]:
    """Word slot of each token, merging '##' pieces into the preceding word, as BertEncoder.aggregate_tokens.

    Returns (slot per token, -1 after [SEP]; number of real words n). [CLS] is slot 0, words 1..n,
    [SEP] n+1.
    """
    slots, current, seen_sep = [], -1, False
    for token in tokens:
        if seen_sep:
            slots.append(-1)
            continue
        if not token.startswith("##") or current < 0:
            current += 1
        slots.append(current)
        seen_sep = token == "[SEP]"
    return slots, max(current - 1, 0)


class GloriaEncoder(Encoder):
    """GLoRIA behind the shared `Encoder` interface, with global and local outputs."""

    def __init__(self, spec: EncoderSpec, model: GloriaModel, tokenizer, *, weights_tag: str, weights_digest: str):
        super().__init__(spec, weights_tag=weights_tag, weights_digest=weights_digest)
        self.model = model
        self.tokenizer = tokenizer

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        embedding, local = self.model.img_encoder.global_and_local(images)
        return {"embedding": embedding, "local": local}

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        length = self.spec.context_length
        tokens = self.tokenizer(
            [clean_prompt(prompt) for prompt in prompts],
            padding="max_length",
            truncation=True,
            max_length=length,
            return_tensors="pt",
        )
        slots, counts = [], []
        for prompt, ids in zip(prompts, tokens["input_ids"].tolist()):
            token_slots, n_words = word_slots(self.tokenizer.convert_ids_to_tokens(ids))
            if n_words == 0:
                raise BenchError(
                    f"GLoRIA prompt {prompt!r} has no words after the authors' cleaning (it drops sentences of one "
                    "word); give it at least two words in the prompt file."
                )
            slots.append(token_slots)
            counts.append(n_words)
        device = self.device
        words, sentence = self.model.text_encoder(
            tokens["input_ids"].to(device),
            tokens["attention_mask"].to(device),
            tokens["token_type_ids"].to(device),
            torch.tensor(slots, device=device),
            length,
        )
        positions = torch.arange(length, device=device)
        counts_tensor = torch.tensor(counts, device=device).unsqueeze(1)
        word_mask = (positions >= 1) & (positions <= counts_tensor)
        return {"embedding": sentence, "words": words, "word_mask": word_mask}

    def image_tower(self) -> nn.Module:
        return self.model.img_encoder


def gloria_similarity(
    image_global: torch.Tensor,
    image_local: torch.Tensor,
    text_global: torch.Tensor,
    words: torch.Tensor,
    word_mask: torch.Tensor,
    *,
    attention_temperature: float = ATTENTION_TEMPERATURE,
    word_temperature: float = WORD_TEMPERATURE,
) -> torch.Tensor:
    """GLoRIA's zero-shot image-prompt score: (global cosine + local similarity) / 2, shape [B, P].

    Args (any float dtype; computed in float32 on the inputs' device):
        image_global: [B, D] `encode_image(...)["embedding"]`.
        image_local:  [B, L, D] `encode_image(...)["local"]` (L image regions).
        text_global:  [P, D] `encode_text(...)["embedding"]`.
        words:        [P, T, D] `encode_text(...)["words"]`.
        word_mask:    [P, T] bool `encode_text(...)["word_mask"]`; every prompt needs at least one word.

    Local similarity of image b and prompt p (gloria_model.get_local_similarities): for each word w of p,
    attention over the words then (sharpened by `attention_temperature`, 4.0) over the L regions gives an
    attention-weighted image context c_w; the score is max over words of `word_temperature` (5.0) *
    cos(w, c_w). Global similarity is the plain cosine.

    For a class score the authors take the max over the class's prompts, then z-score each class column over
    the images of the batch (gloria.utils.normalize) -- that is the caller's job.

    Known difference: the authors' zero-shot code slices each prompt's word axis by the prompt's length in
    characters (a bug in process_text's cap_lens), which also lets [SEP] and zero padding slots into the max
    and the first softmax (and fails for prompts of 97+ characters). We use the real words only.
    """
    if image_global.ndim != 2 or image_local.ndim != 3 or text_global.ndim != 2 or words.ndim != 3:
        raise ValueError(
            "gloria_similarity expects image_global [B, D], image_local [B, L, D], text_global [P, D], "
            f"words [P, T, D]; got {tuple(image_global.shape)}, {tuple(image_local.shape)}, "
            f"{tuple(text_global.shape)}, {tuple(words.shape)}"
        )
    if word_mask.shape != words.shape[:2]:
        raise ValueError(f"word_mask {tuple(word_mask.shape)} must match words [P, T] = {tuple(words.shape[:2])}")
    word_mask = word_mask.bool()
    empty = (~word_mask.any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"prompts {empty} have no words in word_mask; GLoRIA's local similarity needs at least one")
    with torch.autocast(device_type=image_local.device.type, enabled=False):
        return _global_plus_local(
            image_global.float(),
            image_local.float(),
            text_global.to(image_local.device, torch.float32),
            words,
            word_mask.to(words.device),
            attention_temperature,
            word_temperature,
        )


def _global_plus_local(
    image_global, image_local, text_global, words, word_mask, attention_temperature, word_temperature
):
    """The body of `gloria_similarity` on float32 tensors.

    All words of a group of prompts go through two large matrix products (instead of two small ones per
    prompt); the per-prompt softmax over words and max over words are segment operations on the word axis.
    """
    global_similarity = F.normalize(image_global, dim=-1) @ F.normalize(text_global, dim=-1).T  # [B, P]
    local_similarity = torch.empty_like(global_similarity)
    counts = word_mask.sum(1).tolist()
    for first, last in _prompt_groups(counts, MAX_WORDS_PER_PRODUCT):
        group_words = words[first:last][word_mask[first:last]].to(image_local)  # [N, D], prompt by prompt
        prompt_of_word = torch.repeat_interleave(
            torch.arange(last - first, device=image_local.device),
            torch.tensor(counts[first:last], device=image_local.device),
        )
        local_similarity[:, first:last] = _local_similarity(
            image_local, group_words, prompt_of_word, last - first, attention_temperature, word_temperature
        )
    return (global_similarity + local_similarity) / 2


MAX_WORDS_PER_PRODUCT = 1024
"""Words scored together in one product (bounds memory at [B, L, 1024] and [B, 1024, D])."""


def _prompt_groups(counts: list[int], max_words: int) -> list[tuple[int, int]]:
    """Consecutive prompt ranges [first, last) whose word counts sum to at most `max_words` (one prompt min)."""
    groups, first, total = [], 0, 0
    for index, count in enumerate(counts):
        if total and total + count > max_words:
            groups.append((first, index))
            first, total = index, 0
        total += count
    groups.append((first, len(counts)))
    return groups


def _segment_max(values: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Max over the last axis of `values` within each segment id of `segment` -> [..., n_segments]."""
    shape = (*values.shape[:-1], n_segments)
    index = segment.expand(*values.shape[:-1], -1)
    return values.new_full(shape, -torch.inf).scatter_reduce(-1, index, values, reduce="amax")


def _local_similarity(image_local, words, prompt_of_word, n_prompts, attention_temperature, word_temperature):
    """GLoRIA's local image-prompt similarity [B, n_prompts] for words [N, D] grouped by `prompt_of_word`."""
    logits = image_local @ words.T  # [B, L, N]
    # softmax over each prompt's words (attention_fn's first softmax), as a segment softmax on the word axis
    shifted = (logits - _segment_max(logits, prompt_of_word, n_prompts)[..., prompt_of_word]).exp()
    totals = torch.zeros(*logits.shape[:-1], n_prompts, device=logits.device).scatter_add_(
        -1, prompt_of_word.expand(*logits.shape[:-1], -1), shifted
    )
    word_attention = shifted / totals[..., prompt_of_word]  # [B, L, N]
    region_attention = (word_attention.transpose(1, 2) * attention_temperature).softmax(dim=-1)  # [B, N, L]
    context = region_attention @ image_local  # [B, N, D]
    cosine = F.cosine_similarity(words.unsqueeze(0), context, dim=-1, eps=1e-8)  # [B, N]
    return _segment_max(word_temperature * cosine, prompt_of_word, n_prompts)


def official_state_dict(checkpoint: Checkpoint, model: GloriaModel) -> dict[str, torch.Tensor]:
    """The tensors of a GLoRIA Lightning checkpoint (or a bare state_dict), `gloria.` prefix removed."""
    state = unwrap_state_dict(checkpoint.content, path=checkpoint.path, keys=("state_dict",))
    if not any(key.startswith(CHECKPOINT_PREFIX) for key in state):
        raise BenchError(
            f"{checkpoint.path}: no key starts with {CHECKPOINT_PREFIX!r}; expected GLoRIA's Lightning checkpoint "
            f"(state_dict keys gloria.img_encoder.*, gloria.text_encoder.*). First keys: {sorted(state)[:5]}."
        )
    state = {
        (key[len(CHECKPOINT_PREFIX):] if key.startswith(CHECKPOINT_PREFIX) else key): value
        for key, value in state.items()
    }
    state, _dropped = drop_legacy_buffers(state, model.state_dict().keys())
    return state


def build_model(spec: EncoderSpec, bert_config) -> GloriaModel:
    resnet = family_setting(spec, "resnet")
    if bert_config.hidden_size != spec.text_embed_dim or spec.image_embed_dim != spec.text_embed_dim:
        raise BenchError(
            f"encoder {spec.name!r}: GLoRIA embeds images and words in the BERT width ({bert_config.hidden_size}); "
            f"the spec says image {spec.image_embed_dim}, text {spec.text_embed_dim}. Fix the spec."
        )
    image = GloriaImageEncoder(
        spec.image_embed_dim, blocks=resnet["blocks"], widths=resnet["widths"], stem_width=resnet["stem_width"]
    )
    return GloriaModel(image, GloriaTextEncoder(bert_config))


def build(spec: EncoderSpec, checkpoint: Checkpoint | None, device) -> Encoder:
    return build_clinical_bert_encoder(
        spec, checkpoint, device,
        build_model=build_model, official_state_dict=official_state_dict, encoder_class=GloriaEncoder,
    )
