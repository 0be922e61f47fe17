"""DPM-Solver++(3M) SDE: third-order multistep in data prediction, with SDE noise.

As in samplers_dpmpp.py, t = -log(sigma) and each step integrates the x0 prediction exactly
against the step's exponential weight; here the prediction is extrapolated from the last
three outputs (a quadratic in t), after a warm-up of one first- and one second-order step.
With eta > 0 the SDE's extra decay exp(-eta h) is applied and matching noise injected; the
noise is meant to come from one Brownian path (BrownianTreeNoise), as in k-diffusion and
ComfyUI. The weights are k-diffusion's (phi_2, phi_3 of h (1 + eta)); diffusers'
third-order "sde-dpmsolver++" differs from them in the sign of phi_3's constant term.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import require_noise


@torch.no_grad()
def sample_dpmpp_3m_sde(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(3M) SDE, Lu et al. 2022 (k-diffusion's sample_dpmpp_3m_sde)."""
    extra_args = extra_args or {}
    if eta > 0:
        noise = require_noise(noise, "dpmpp_3m_sde")
    steps = len(sigmas) - 1
    # The previous two x0 predictions and step lengths, newest first.
    denoised_1: Tensor | None = None
    denoised_2: Tensor | None = None
    h: Tensor | None = None
    h_1: Tensor | None = None
    h_2: Tensor | None = None
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = denoised
        else:
            h = sigma.log() - sigma_next.log()
            h_eta = h * (eta + 1)
            x = (sigma_next / sigma) * (-h * eta).exp() * x - torch.expm1(-h_eta) * denoised
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if h_2 is not None and h_1 is not None and denoised_1 is not None:
                assert denoised_2 is not None  # set together with h_2
                # Divided differences of the predictions, in units of this step's length.
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None and denoised_1 is not None:
                x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta > 0:
                assert noise is not None
                x = x + noise(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * h * eta)).sqrt()
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x
