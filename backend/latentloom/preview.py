"""Live previews: a cheap linear latent -> RGB approximation, per model family.

Decoding with the VAE at every sampler step would cost more than the step itself; a 4x3
matrix gets the colours and shapes close enough to watch an image form.
"""

from __future__ import annotations

import torch
from PIL import Image

from latentloom.models.family import FAMILIES, SD15, Family


def latent_to_rgb(latent: torch.Tensor, family: Family | None) -> torch.Tensor:
    """A latent batch [B, C, h, w] as an IMAGE batch [B, h, w, 3] in 0..1, at latent size."""
    spec = family or SD15
    factors = torch.tensor(spec.preview_factors, dtype=torch.float32)
    bias = torch.tensor(spec.preview_bias, dtype=torch.float32)
    samples = latent.detach().float().cpu()[:, : factors.shape[0]]
    rgb = torch.einsum("bchw,cr->bhwr", samples, factors) + bias
    return ((rgb + 1) / 2).clamp(0, 1)


def latent_to_preview(
    latent: torch.Tensor, family: str | None, *, max_size: int = 256
) -> Image.Image:
    """The first image of a latent batch as an RGB picture, at most `max_size` on its long side."""
    rgb = latent_to_rgb(latent[:1], FAMILIES.get(family or "", SD15))[0]
    pixels = rgb.mul(255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels, mode="RGB")
    scale = max_size / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        )
    return image
