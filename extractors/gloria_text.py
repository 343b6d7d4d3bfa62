"""GLoRIA's text cleaning (`GLoRIA.process_text` in marshuang80/gloria gloria/models/gloria_model.py), torch-free.

The authors split a text into sentences at numbered points (`[0-9]+\\.`) and at full stops, tokenise each
sentence with `\\w+` after lower-casing, DROP every sentence of one word or none, keep the ASCII part of each
word, and join the remaining sentences' words with spaces. A one-word prompt ("scarring") therefore reaches
their text encoder as an empty text: their zero-shot classifier scores an empty caption for it. We drop such
prompts from GLoRIA's prompt set instead (`prompt_keeps_words`), which is what the authors' cleaning does to
the words and avoids scoring an empty caption (docs/medclip-gloria.md).
"""

from __future__ import annotations

import re

NUMBERED_POINT = re.compile(r"[0-9]+\.")
WORD = re.compile(r"\w+")


def clean_text(text: str) -> str:
    """The text GLoRIA's tokenizer sees for `text` (empty when every sentence has at most one word)."""
    text = text.replace("\n", " ")
    sentences = [sentence for point in NUMBERED_POINT.split(text) for sentence in point.split(".")]
    kept = []
    for sentence in sentences:
        tokens = WORD.findall(sentence.replace("\ufffd\ufffd", " ").lower())
        if len(tokens) <= 1:
            continue
        words = [token.encode("ascii", "ignore").decode("ascii") for token in tokens]
        kept.append(" ".join(word for word in words if word))
    return " ".join(kept)


def prompt_keeps_words(text: str) -> bool:
    """Whether GLoRIA's cleaning leaves any word of `text` (False for one-word prompts)."""
    return bool(clean_text(text).strip())
