"""VAE decode and encode between IMAGE tensors and the family's scaled latent space."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch

from latentloom.models.family import Family
from latentloom.models.handles import Vae
from latentloom.vae_dtype import vae_autocast


def _module(vae: Vae) -> Any:
    # diffusers' classes are untyped for mypy; AutoencoderKL is an nn.Module with encode/decode.
    return cast(Any, vae.module)


def _module_placement(vae: Vae) -> tuple[torch.device, torch.dtype]:
    parameter = next(_module(vae).parameters())
    return parameter.device, parameter.dtype


@torch.inference_mode()
def decode(
    vae: Vae,
    latent: torch.Tensor,
    *,
    family: Family | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
) -> torch.Tensor:
    """[B, C, h, w] scaled latents -> [B, H, W, 3] float32 images in 0..1 on the CPU, one at a time.

    The scale is the latent's `family`'s when known (the model that made it fixed its latent
    space); else the VAE's. A standalone VAE file cannot always say which family it is for
    (SD 1.x and SDXL VAEs have the same shapes), so the latent's word wins.
    """
    device, dtype = _module_placement(vae)
    scaling_factor = (family or vae.family).vae_scaling_factor
    shift_factor = (family or vae.family).vae_shift_factor  # SD 3 / FLUX: z / scale + shift
    frames = []
    for item in latent:  # one at a time: a long morph must not need memory for every frame at once
        check_cancelled()
        scaled = item.unsqueeze(0).to(device, dtype) / scaling_factor + shift_factor
        # fp32 on the CPU; never fp16 for SDXL's VAE (vae_dtype.py)
        with vae_autocast(device, dtype, vae.family.name, (family or vae.family).name):
            pixels = _module(vae).decode(scaled).sample
        frames.append(((pixels.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu())
    return torch.cat(frames)


@torch.inference_mode()
def encode(vae: Vae, images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] images in 0..1 -> [B, C, H/8, W/8] scaled latents (the distribution's mean)."""
    device, dtype = _module_placement(vae)
    downscale = vae.family.downscale
    height, width = (
        images.shape[1] // downscale * downscale,
        images.shape[2] // downscale * downscale,
    )
    pixels = images[:, :height, :width].permute(0, 3, 1, 2).to(device, dtype) * 2 - 1
    with vae_autocast(device, dtype, vae.family.name):
        latents = _module(vae).encode(pixels).latent_dist.mean
    family = vae.family  # SD 3 / FLUX store (z - shift) * scale; the others have shift 0
    return ((latents.float() - family.vae_shift_factor) * family.vae_scaling_factor).cpu()
