"""The 16-channel SD 3 VAE: latents stored as (z - shift) * scale, decoded as z / scale + shift."""

from __future__ import annotations

from typing import Any

import torch

from latentloom.models.family import SD3
from latentloom.models.handles import Vae
from latentloom.models.sd3_tiny import tiny_sd3_modules
from latentloom.vae import decode, encode


def _tiny_vae() -> tuple[Any, Vae]:
    module: Any = tiny_sd3_modules()["vae"].float()
    return module, Vae(module=module, family=SD3, source="tiny")


def test_decode_unscales_and_unshifts() -> None:
    module, vae = _tiny_vae()
    latent = torch.randn(1, 16, 4, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pixels = module.decode(latent / 1.5305 + 0.0609).sample
    expected = ((pixels + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    assert torch.allclose(decode(vae, latent), expected, atol=1e-6)


def test_encode_shifts_then_scales() -> None:
    module, vae = _tiny_vae()
    images = torch.rand(1, 32, 48, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean = module.encode(images.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mean
    latent = encode(vae, images)
    assert latent.shape == (1, 16, 4, 6)
    assert torch.allclose(latent, (mean - 0.0609) * 1.5305, atol=1e-6)
    assert not torch.allclose(latent, mean * 1.5305, atol=1e-3)  # the shift is really applied


def test_sd3_family_numbers_are_the_published_ones() -> None:
    assert (SD3.latent_channels, SD3.downscale) == (16, 8)
    assert (SD3.vae_scaling_factor, SD3.vae_shift_factor) == (1.5305, 0.0609)
    assert len(SD3.preview_factors) == 16
    assert SD3.preview_factors[0] == (-0.0922, -0.0175, 0.0749)
    assert SD3.preview_factors[15] == (-0.1448, -0.1463, -0.1189)
    assert SD3.preview_bias == (0.2394, 0.2135, 0.1925)
