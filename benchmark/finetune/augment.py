"""Seeded augmentation of a batch of uint8 grayscale images, in torch, on the images' device.

The seed study's torchvision pipeline (RandomVerticalFlip(0.3), RandomHorizontalFlip(0.3), RandomRotation(15),
ColorJitter(0.2)) re-expressed for a [B, S, S] uint8 batch read from the pixel cache, so that augmentation runs
on the GPU with the rest of the step and draws its randomness only from the generator it is given:

- each image is flipped vertically, then horizontally, each with its own probability;
- rotated by an angle drawn uniformly in [-degrees, +degrees] about its centre (nearest neighbour, corners
  filled with black, as torchvision's default);
- brightness scaled by a factor in [1 - jitter, 1 + jitter] (ColorJitter(0.2) jitters brightness only;
  saturation and hue do not apply to grayscale images).
The result is uint8 again, so the encoder's own `preprocess` follows unchanged.

Drawing (`draw_augmentation`) is separate from applying (`apply_augmentation`) so that every process of a
distributed run draws the parameters of the whole global batch and applies its own slice: the images are
changed exactly as they would be in one process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.finetune.config import Augmentation


@dataclass(frozen=True)
class AugmentationDraw:
    """The random choices for a batch of images (CPU tensors, one entry per image)."""

    vflip: torch.Tensor
    hflip: torch.Tensor
    degrees: torch.Tensor
    brightness: torch.Tensor

    def __len__(self) -> int:
        return self.vflip.shape[0]

    def __getitem__(self, rows: slice) -> "AugmentationDraw":
        return AugmentationDraw(self.vflip[rows], self.hflip[rows], self.degrees[rows], self.brightness[rows])


def draw_augmentation(count: int, augmentation: Augmentation, generator: torch.Generator) -> AugmentationDraw:
    """Draw the random choices for `count` images from `generator` (always the same draws in the same order)."""
    vflip = torch.rand(count, generator=generator) < augmentation.vflip
    hflip = torch.rand(count, generator=generator) < augmentation.hflip
    degrees = (torch.rand(count, generator=generator) * 2 - 1) * augmentation.rotation_degrees
    brightness = 1 + (torch.rand(count, generator=generator) * 2 - 1) * augmentation.jitter
    return AugmentationDraw(vflip, hflip, degrees, brightness)


def apply_augmentation(pixels: torch.Tensor, draw: AugmentationDraw) -> torch.Tensor:
    """Return an augmented copy of `pixels` (uint8 [B, S, S]) following `draw` (B entries)."""
    if pixels.dtype != torch.uint8 or pixels.ndim != 3:
        raise ValueError(f"expected a uint8 [B, S, S] batch, got {pixels.dtype} {tuple(pixels.shape)}")
    if len(draw) != pixels.shape[0]:
        raise ValueError(f"augmentation drawn for {len(draw)} images, batch has {pixels.shape[0]}")
    device = pixels.device
    images = pixels.clone()
    if draw.vflip.any():
        images = torch.where(draw.vflip.to(device)[:, None, None], images.flip(-2), images)
    if draw.hflip.any():
        images = torch.where(draw.hflip.to(device)[:, None, None], images.flip(-1), images)
    rotate = bool((draw.degrees != 0).any())
    jitter = bool((draw.brightness != 1).any())
    if not rotate and not jitter:
        return images
    images = images.float()
    if rotate:
        images = _rotate(images, draw.degrees.to(device))
    if jitter:
        images = images * draw.brightness.to(device)[:, None, None]
    return images.round_().clamp_(0, 255).to(torch.uint8)


def augment_pixels(pixels: torch.Tensor, augmentation: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Draw and apply in one go (one process, one batch)."""
    return apply_augmentation(pixels, draw_augmentation(pixels.shape[0], augmentation, generator))


def _rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image [B, S, S] by its angle about the centre, black outside the source image."""
    radians = degrees * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zeros = torch.zeros_like(cos)
    # affine_grid maps each output position to the input position it samples from.
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, [images.shape[0], 1, *images.shape[-2:]], align_corners=False)
    rotated = F.grid_sample(images[:, None], grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return rotated[:, 0]
