"""Turn a uint8 pixel-store batch into model input, in torch, on the encoder's device.

The steps come from the spec (`PreprocessSpec.steps`), so every family's pipeline is data:
  to_float         divide by `divisor` (255 -> values in [0, 1]; 1 -> keep 0..255 as CheXzero does)
  repeat_channels  copy the grey channel to `channels` channels
  normalize        subtract `mean`, divide by `std` (one value per channel, or one for all)
  resize           to `size` x `size` with `interpolation` (bicubic/bilinear/area/nearest), `antialias`
                   when shrinking, optional `align_corners` (GLoRIA's 299-px upsampling)
  center_crop      the central `size` x `size` square
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.core.errors import BenchError
from extractors.registry import PreprocessSpec, PreprocessStep


def _resize(images: torch.Tensor, step: PreprocessStep) -> torch.Tensor:
    if images.shape[-1] == step.size and images.shape[-2] == step.size:
        return images
    mode = step.interpolation or "bilinear"
    kwargs = {}
    if mode in ("bilinear", "bicubic"):
        shrinking = images.shape[-1] > step.size
        kwargs["antialias"] = bool(step.antialias and shrinking)
        kwargs["align_corners"] = bool(step.align_corners) if step.align_corners is not None else False
    return F.interpolate(images, size=(step.size, step.size), mode=mode, **kwargs)


def _center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    if size > min(height, width):
        raise BenchError(f"center_crop size {size} is larger than the image ({height}x{width}); fix the spec.")
    top = (height - size) // 2
    left = (width - size) // 2
    return images[..., top : top + size, left : left + size]


def _normalize(images: torch.Tensor, step: PreprocessStep) -> torch.Tensor:
    mean = torch.tensor(step.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(step.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    if mean.shape[1] not in (1, images.shape[1]):
        raise BenchError(
            f"normalize has {mean.shape[1]} mean values but the images have {images.shape[1]} channels; "
            "put repeat_channels before normalize or give one value per channel."
        )
    return (images - mean) / std


def apply_preprocess(spec: PreprocessSpec, pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [B, S, S] (S = spec.pixel_size) -> float32 [B, C, H, W], on the device `pixels` is on."""
    if pixels.dtype != torch.uint8 or pixels.ndim != 3:
        raise BenchError(
            f"preprocess expects a uint8 batch [B, S, S] from the pixel store, got {pixels.dtype} "
            f"{tuple(pixels.shape)}."
        )
    if pixels.shape[-1] != spec.pixel_size or pixels.shape[-2] != spec.pixel_size:
        raise BenchError(
            f"this encoder reads {spec.pixel_size}x{spec.pixel_size} pixel stores, got "
            f"{pixels.shape[-2]}x{pixels.shape[-1]}; build the pixel store at size {spec.pixel_size}."
        )
    images = pixels.unsqueeze(1).to(torch.float32)
    for step in spec.steps:
        if step.op == "to_float":
            images = images / float(step.divisor or 1.0)
        elif step.op == "repeat_channels":
            images = images.expand(-1, step.channels, -1, -1).contiguous() if images.shape[1] == 1 else images
        elif step.op == "normalize":
            images = _normalize(images, step)
        elif step.op == "resize":
            images = _resize(images, step)
        elif step.op == "center_crop":
            images = _center_crop(images, step.size)
        else:  # the registry refuses unknown ops; this guards specs built in code
            raise BenchError(f"unknown preprocessing op {step.op!r}.")
    return images
