"""Where a KSampler starts: the seed's noise and how far it is scaled, as ComfyUI does it.

The initial noise is `torch.randn` over the whole latent batch [B, C, H, W] from a CPU
generator seeded with the seed, then moved to the sampling device, so a seed means the same
starting noise on every device. (One draw over the batch: the second image of a batch of two
is not the image of seed + 1.)

The start is x = latent + noise * scale. At full denoise, i.e. when the first sigma is the
model's sigma_max (within a relative 1e-5) or above it, the scale is sqrt(1 + sigma^2): the
variance-preserving unit noise x_T of DDPM expressed in sigma space, the convention of
ComfyUI, of the original LDM samplers and of diffusers' "leading" spacing. Otherwise (img2img,
or a schedule that starts below sigma_max such as ddim_uniform) it is sigma itself. For SD's
sigma_max of 14.6 the two differ by 0.2 %. The rule looks at the sigmas alone, not at the
denoise value: denoise 0.99 with 20 steps still runs a full 20-step schedule and scales fully.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MAX_DENOISE_RELATIVE_TOLERANCE = 1e-5


def initial_noise(seed: int, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """Standard normal float32 noise over the full latent shape, from a CPU generator."""
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def is_max_denoise(first_sigma: float, sigma_max: float) -> bool:
    """Whether sampling starts from pure noise: the first sigma is (at least) sigma_max."""
    return (
        math.isclose(sigma_max, first_sigma, rel_tol=MAX_DENOISE_RELATIVE_TOLERANCE)
        or first_sigma > sigma_max
    )


def noise_scale(first_sigma: Tensor, sigma_max: float) -> Tensor:
    """The factor the initial noise is multiplied by: sqrt(1 + sigma^2) or sigma (float32)."""
    sigma = torch.as_tensor(first_sigma, dtype=torch.float32)
    if is_max_denoise(float(sigma), sigma_max):
        return torch.sqrt(1.0 + sigma**2.0)
    return sigma


def start_latent(latent: Tensor, noise: Tensor, sigmas: Tensor, sigma_max: float) -> Tensor:
    """x at sigmas[0]: the latent plus the scaled noise (both already on the sampling device)."""
    scale = noise_scale(sigmas[0], sigma_max).to(noise.device)
    return noise * scale + latent
