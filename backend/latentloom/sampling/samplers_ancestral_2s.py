"""DPM-Solver++(2S) ancestral: a two-stage exponential-integrator step, then fresh noise.

Each step goes from sigma to sigma_down (the ancestral split, see samplers_euler.ancestral_step)
with DPM-Solver++(2S) (Lu et al. 2022, r = 1/2): one denoiser call at sigma, one at the
log-sigma midpoint of sigma and sigma_down, and the step uses the midpoint's x0 prediction.
Fresh noise of std sigma_up then brings x back up to sigma_next. When sigma_down is 0 (the last
step) the step is plain Euler, as in k-diffusion, which lands on the prediction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import ancestral_step, require_noise, to_d


@torch.no_grad()
def sample_dpmpp_2s_ancestral(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(2S) ancestral, Lu et al. 2022 (k-diffusion's sample_dpmpp_2s_ancestral)."""
    extra_args = extra_args or {}
    step_noise = require_noise(noise, "dpmpp_2s_ancestral") if eta > 0 else None
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        else:
            # In t = -log(sigma) the step has length h; the midpoint s is half-way in t.
            t, t_down = sigma.log().neg(), sigma_down.log().neg()
            h = t_down - t
            sigma_mid = (t + h / 2).neg().exp()
            x_mid = (sigma_mid / sigma) * x - torch.expm1(-h / 2) * denoised
            denoised_mid = denoise(x_mid, sigma_mid, **extra_args)
            x = (sigma_down / sigma) * x - torch.expm1(-h) * denoised_mid
        if sigma_next > 0 and step_noise is not None:
            x = x + step_noise(sigma, sigma_next) * sigma_up
    return x
