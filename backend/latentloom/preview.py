"""Live previews: a cheap linear latent -> RGB approximation, per model family.

Decoding with the VAE at every sampler step would cost more than the step itself; a 4x3
matrix gets the colours and shapes close enough to watch an image form.
"""

from __future__ import annotations

import torch
from PIL import Image

from latentloom.models.family import FAMILIES, SD15


def latent_to_preview(
    latent: torch.Tensor, family: str | None, *, max_size: int = 256
) -> Image.Image:
    """The first image of a latent batch as an RGB picture, at most `max_size` on its long side."""
    spec = FAMILIES.get(family or "", SD15)
    factors = torch.tensor(spec.preview_factors, dtype=torch.float32)
    bias = torch.tensor(spec.preview_bias, dtype=torch.float32)
    sample = latent[0].detach().float().cpu()[: factors.shape[0]]
    rgb = torch.einsum("chw,cr->hwr", sample, factors) + bias
    pixels = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels, mode="RGB")
    scale = max_size / max(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        )
    return image
