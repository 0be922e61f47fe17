"""SDXL's micro-conditioning: the time ids a base or refiner UNet receives beside the text.

A base UNet reads [orig h, orig w, crop top, crop left, target h, target w]; a refiner reads
[orig h, orig w, crop top, crop left, aesthetic score]. Each conditioning entry may carry its
own `SizeConditioning` (CLIPTextEncodeSDXL / ...Refiner); an entry without one gets the run's
`SdxlSizeConditioning`, else the latent's own size in pixels with no crop (diffusers' and
ComfyUI's default). A target left unset is the original size, and a refiner's aesthetic score
left unset is 6.0 on the positive side and 2.5 on the negative, as in ComfyUI and diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latentloom.models.handles import SizeConditioning

# The aesthetic scores a refiner entry gets unless it sets one (ComfyUI's and diffusers').
POSITIVE_AESTHETIC_SCORE = 6.0
NEGATIVE_AESTHETIC_SCORE = 2.5


@dataclass(frozen=True)
class SdxlSizeConditioning:
    """SDXL's micro-conditioning on image size and crop, in pixels, as (height, width)."""

    original_size: tuple[int, int]
    target_size: tuple[int, int]
    crop_top_left: tuple[int, int] = (0, 0)

    def time_ids(self) -> Tensor:
        """[orig_h, orig_w, crop_top, crop_left, target_h, target_w] as a [1, 6] tensor."""
        values = (*self.original_size, *self.crop_top_left, *self.target_size)
        return torch.tensor([values], dtype=torch.float32)


def default_size_conditioning(x: Tensor, downscale: int) -> SdxlSizeConditioning:
    """Original and target size = the latent's size in pixels, no crop (diffusers' default)."""
    size = (x.shape[-2] * downscale, x.shape[-1] * downscale)
    return SdxlSizeConditioning(original_size=size, target_size=size)


def time_ids(
    size: SizeConditioning | None,
    default: SdxlSizeConditioning,
    *,
    refiner: bool,
    is_negative: bool,
) -> Tensor:
    """[1, 6] (base) or [1, 5] (refiner) float32 time ids of one entry's size conditioning."""
    if size is None:
        # Every entry sees the whole picture's size, areas included (ComfyUI does the same).
        size = SizeConditioning(
            original=default.original_size,
            crop_top_left=default.crop_top_left,
            target=default.target_size,
        )
    values: tuple[float, ...]
    if refiner:
        score = size.aesthetic_score
        if score is None:
            score = NEGATIVE_AESTHETIC_SCORE if is_negative else POSITIVE_AESTHETIC_SCORE
        values = (*size.original, *size.crop_top_left, score)
    else:
        values = (*size.original, *size.crop_top_left, *(size.target or size.original))
    return torch.tensor([values], dtype=torch.float32)
