"""The `Encoder` interface every family adapter implements (see docs/CONTRACTS.md, "Encoders").

An encoder is built frozen and in eval mode. Fine-tuning code takes `image_tower()` and switches on the
gradients it wants (`requires_grad_(True)`, or peft on `lora_targets`); nothing here is wrapped in
`torch.no_grad`, so gradients flow when they are enabled. Embeddings are returned raw (not L2-normalised);
heads normalise where their method needs it.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from extractors.preprocess import apply_preprocess
from extractors.registry import EncoderSpec


class Encoder(nn.Module):
    """A frozen image/text encoder with the spec's preprocessing.

    Subclasses set `self.model` (the wrapped network) and implement `encode_image`, `encode_text` and
    `image_tower`.
    """

    def __init__(self, spec: EncoderSpec, *, weights_tag: str, weights_digest: str):
        super().__init__()
        self.spec = spec
        self.weights_tag = weights_tag
        self.weights_digest = weights_digest

    @property
    def pixel_size(self) -> int:
        return self.spec.preprocess.pixel_size

    @property
    def pixel_resize(self) -> str:
        """The pixel store's resize filter this encoder reads (`PreprocessSpec.store_resize`)."""
        return self.spec.preprocess.store_resize

    @property
    def embed_dim(self) -> int:
        return self.spec.embed_dim

    @property
    def lora_targets(self) -> list[str]:
        return list(self.spec.lora_targets)

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    def freeze(self) -> "Encoder":
        """Eval mode and no gradients anywhere (the state `load_encoder` returns)."""
        self.eval()
        self.requires_grad_(False)
        return self

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 [B, S, S] pixel-store batch -> float [B, C, H, W] on the encoder's device."""
        return apply_preprocess(self.spec.preprocess, pixels.to(self.device, non_blocking=True))

    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Preprocessed images [B, C, H, W] -> {"embedding": [B, D], ...family extras}."""
        raise NotImplementedError

    def encode_text(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Prompt strings -> {"embedding": [P, D], ...family extras}."""
        raise NotImplementedError

    def image_tower(self) -> nn.Module:
        """The image branch that fine-tuning trains (its output feeds the image embedding)."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The image embedding of preprocessed images (so the encoder works as a plain module)."""
        return self.encode_image(images)["embedding"]

    def extra_repr(self) -> str:
        return f"name={self.spec.name!r}, weights={self.weights_tag!r}"


@contextmanager
def seeded_init(seed: int):
    """Run model construction with the CPU generator seeded, restoring the caller's RNG state after.

    Gives tiny random-init variants the same weights on every build without any global side effect.
    """
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(int(seed))
        yield
