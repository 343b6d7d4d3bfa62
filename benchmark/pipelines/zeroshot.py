"""Wiring the zero-shot head to a store: its prompt set, the encoder family's settings, GLoRIA's similarity.

The family's settings (how prompts are ensembled, the logit scale) come from the encoder registry
(`EncoderSpec.zeroshot`); GLoRIA's global + local image-prompt similarity from its adapter. The head itself
(`heads.zeroshot.ZeroShotHead`) knows neither.
"""

from __future__ import annotations

import numpy as np

from benchmark.core.errors import BenchError

DEFAULT_ENSEMBLE, DEFAULT_LOGIT_SCALE = "prototype", 100.0
"""For stores of encoders outside the registry (e.g. an `Encoder` object passed to extraction)."""


def zeroshot_settings(model: str) -> tuple[str, float, str]:
    """(ensemble, logit scale, prompt style) of a registered encoder; CLIP's for one outside the registry."""
    from extractors.registry import REGISTRY

    spec = REGISTRY.get(model)
    if spec is None:
        return DEFAULT_ENSEMBLE, DEFAULT_LOGIT_SCALE, "clip"
    return spec.zeroshot.ensemble, float(spec.zeroshot.logit_scale), spec.prompt_style


def is_vision_only(model: str) -> bool:
    """Whether the registered encoder `model` has no text tower (its spec's zero-shot ensemble is "none")."""
    from extractors.registry import REGISTRY

    spec = REGISTRY.get(model)
    return spec is not None and spec.zeroshot.ensemble == "none"


def refuse_vision_only(model: str) -> None:
    """A one-line BenchError for an encoder without a text tower (RAD-DINO): zero-shot needs prompt embeddings."""
    if is_vision_only(model):
        raise BenchError(
            f"encoder {model!r} is vision only (no text tower, so no prompt embeddings): zero-shot is not possible; "
            "use --heads linear,mlp or fine-tuning."
        )


def heads_for_encoder(model: str, specs: list, *, defaults: bool, progress) -> list:
    """The heads to fit for `model`: a vision-only encoder drops the text heads from the defaults (saying so)
    and refuses them, in one line and before anything is fitted, when they were asked for by name."""
    if not is_vision_only(model) or not any("text" in spec.needs for spec in specs):
        return specs
    if not defaults:
        refuse_vision_only(model)
    kept = [spec for spec in specs if "text" not in spec.needs]
    progress.note(f"{model} has no text tower: fitting {', '.join(spec.name for spec in kept)} only")
    return kept


def build_zeroshot(store, classes, kind: str, *, promptset: str | None = None, temperature=None, text=None):
    """(a zero-shot head over a prompt set in the encoder family's style, what was chosen for it). `text`: the
    set's `benchmark.pipelines.promptsets.PromptText` (default: the store's set `promptset`, or its default)."""
    from benchmark.pipelines.promptsets import PromptText, store_default
    from heads.registry import HEADS

    refuse_vision_only(store.model)
    if text is None:
        chosen = promptset or store_default(store)
        text = PromptText(chosen, store.text(chosen), chosen, True)
    promptset, label, text = text.name, text.label, text.fields
    covered = set(text["class_name"].tolist())
    missing = [c for c in classes if c not in covered]
    if missing:
        raise BenchError(
            f"prompt set {promptset!r} of {store.path} has no prompts for {missing}; edit the prompt file "
            f"(extractors/prompts/) and run `bench extract` again"
        )
    ensemble, logit_scale, style = zeroshot_settings(store.model)
    similarity, chunk_rows = None, 65536
    if store.has_local and "words" in text:
        similarity, chunk_rows = gloria_similarity_of(store, text), 256
    head = HEADS["zeroshot"].create(
        text_embedding=text["embedding"], class_name=text["class_name"], classes=classes,
        polarity=text.get("polarity"), ensemble=ensemble, logit_scale=logit_scale, temperature=temperature,
        kind=kind, similarity=similarity, chunk_rows=chunk_rows, promptset=None if label == "default" else label,
    )
    named = {} if promptset == label else {"promptset_name": promptset}
    return head, {"promptset": label, **named, "prompt_style": style}


def gloria_similarity_of(store, text):
    """GLoRIA's global + local image-prompt similarity, reading local features for the given store rows."""
    import torch

    from extractors.families.gloria import gloria_similarity

    text_global = torch.from_numpy(text["embedding"])
    words = torch.from_numpy(text["words"])
    mask = torch.from_numpy(text["word_mask"])

    def similarity(image_global, rows):
        local = torch.from_numpy(store.image_local(rows).astype(np.float32))
        return gloria_similarity(image_global, local, text_global, words, mask)

    return similarity
