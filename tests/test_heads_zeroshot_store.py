"""Zero-shot wiring from a store: family ensembling, CheXzero pairs, GLoRIA global + local similarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.pipelines.zeroshot import build_zeroshot

CLASSES = ("Effusion", "Edema")


class FakeStore:
    """The part of cache.embeddings.EmbeddingStore that zero-shot reads."""

    def __init__(self, text, *, model="tiny-clip", local=None):
        self.path = Path("fake.h5")
        self._text = text
        self.promptsets = ("default",)
        self.model = model  # the zero-shot settings come from the encoder registry's entry
        self.has_local = local is not None
        self._local = local

    def text(self, promptset):
        return self._text

    def image_local(self, rows):
        return self._local[np.asarray(rows)]


def text_set(rng, dim, names, polarity=None, words=None):
    fields = {
        "embedding": rng.standard_normal((len(names), dim)).astype(np.float32),
        "class_name": np.array(names),
        "polarity": np.array(polarity or ["pos"] * len(names)),
    }
    if words is not None:
        fields.update(words)
    return fields


def test_gloria_uses_global_plus_local_max_over_prompts_and_val_zscores():
    from extractors.families.gloria import gloria_similarity

    rng = np.random.default_rng(0)
    n, dim, regions, tokens = 40, 8, 4, 5
    names = ["Effusion", "Effusion", "Edema", "Edema", "Edema"]
    mask = np.ones((len(names), tokens), dtype=bool)
    mask[:, 3:] = False
    words = {"words": rng.standard_normal((len(names), tokens, dim)).astype(np.float32), "word_mask": mask}
    text = text_set(rng, dim, names, words=words)
    image = rng.standard_normal((n, dim)).astype(np.float16)
    local = rng.standard_normal((n, regions, dim)).astype(np.float16)
    store = FakeStore(text, model="tiny-gloria", local=local)
    head, chosen = build_zeroshot(store, CLASSES, "multi")
    assert head.ensemble == "max" and chosen == {"promptset": "default", "prompt_style": "gloria"}
    val, test = np.arange(0, 20), np.arange(20, 40)
    head.fit(image[val], None, rows=val)
    probabilities = head.predict_proba(image[test], rows=test)

    def class_scores(rows):
        similarity = gloria_similarity(
            torch.from_numpy(image[rows].astype(np.float32)), torch.from_numpy(local[rows].astype(np.float32)),
            torch.from_numpy(text["embedding"]), torch.from_numpy(words["words"]), torch.from_numpy(mask),
        ).numpy()
        return np.stack([similarity[:, :2].max(axis=1), similarity[:, 2:].max(axis=1)], axis=1)

    val_scores = class_scores(val)
    z = (class_scores(test) - val_scores.mean(axis=0)) / val_scores.std(axis=0, ddof=1)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-z)), atol=1e-5)


def test_chexzero_pairs_and_clip_prototypes():
    rng = np.random.default_rng(1)
    names = ["Effusion", "Effusion", "Edema", "Edema"]
    pairs = FakeStore(text_set(rng, 6, names, ["pos", "neg", "pos", "neg"]), model="tiny-chexzero")
    head, _ = build_zeroshot(pairs, CLASSES, "multi")
    image = rng.standard_normal((10, 6)).astype(np.float32)
    head.fit()
    unit = image / np.linalg.norm(image, axis=1, keepdims=True)
    emb = pairs.text("default")["embedding"]
    cos = unit @ (emb / np.linalg.norm(emb, axis=1, keepdims=True)).T
    expected = 1 / (1 + np.exp(-(cos[:, [0, 2]] - cos[:, [1, 3]])))
    np.testing.assert_allclose(head.predict_proba(image), expected, atol=1e-5)

    clip = FakeStore(text_set(rng, 6, names), model="tiny-clip")
    head = build_zeroshot(clip, CLASSES, "single")[0].fit(image, np.zeros(10, dtype=int))
    assert head.ensemble == "prototype" and head.logit_scale == 100.0
    np.testing.assert_allclose(head.predict_proba(image).sum(axis=1), 1.0)


def test_prompt_set_missing_a_class_is_a_clear_error():
    rng = np.random.default_rng(2)
    store = FakeStore(text_set(rng, 4, ["Effusion"]))
    with pytest.raises(BenchError, match=r"no prompts for \['Edema'\]"):
        build_zeroshot(store, CLASSES, "multi")
