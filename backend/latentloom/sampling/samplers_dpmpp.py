"""DPM-Solver++ samplers (Lu et al. 2022), written in k-diffusion's sigma-space form.

With t = -log(sigma), the data-prediction ODE has the exact solution
x(t_next) = (sigma_next / sigma) x(t) - expm1(-h) * (integral of the x0 prediction), h = t_next - t,
so each solver only has to approximate how the denoised prediction varies over the step. The
stochastic variants add the SDE's extra decay and inject matching fresh noise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import ancestral_step, require_noise, to_d


def _t(sigma: Tensor) -> Tensor:
    return sigma.log().neg()


def _sigma(t: Tensor) -> Tensor:
    return t.neg().exp()


@torch.no_grad()
def sample_dpmpp_2m(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """DPM-Solver++(2M), Lu et al. 2022: second-order multistep in data prediction."""
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    old_denoised: Tensor | None = None
    h_last: Tensor | None = None
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            # The first-order update's limit; higher orders gain nothing on the last step.
            x = denoised
            continue
        h = _t(sigma_next) - _t(sigma)
        denoised_d = denoised
        if old_denoised is not None and h_last is not None:
            # Extrapolate the x0 prediction linearly in t to the step's midpoint.
            half_inverse_r = h / (2 * h_last)
            denoised_d = (1 + half_inverse_r) * denoised - half_inverse_r * old_denoised
        x = (sigma_next / sigma) * x - torch.expm1(-h) * denoised_d
        old_denoised, h_last = denoised, h
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(2M) SDE (midpoint), Lu et al. 2022; eta = 0 gives the ODE solver."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "dpmpp_2m_sde")
    steps = len(sigmas) - 1
    old_denoised: Tensor | None = None
    h_last: Tensor | None = None
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = _t(sigma_next) - _t(sigma)
        eta_h = eta * h
        # 1 - exp(-(1 + eta) h): the weight of x0 once the SDE's extra decay is included.
        weight = -torch.expm1(-h - eta_h)
        x = (sigma_next / sigma) * torch.exp(-eta_h) * x + weight * denoised
        if old_denoised is not None and h_last is not None:
            x = x + 0.5 * weight * (h / h_last) * (denoised - old_denoised)
        if eta:
            x = x + noise(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * eta_h)).sqrt()
        old_denoised, h_last = denoised, h
    return x


@torch.no_grad()
def sample_dpmpp_sde(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++ SDE, two stages per step (midpoint r = 1/2), Lu et al. 2022 / k-diffusion.

    The two noise draws of a step are sub-intervals of the same Brownian path, so pass a
    `BrownianTreeNoise`; independent Gaussian noise gives a slightly wrong noise level.
    """
    extra_args = extra_args or {}
    noise = require_noise(noise, "dpmpp_sde")
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_next - sigma)
            continue
        t, t_next = _t(sigma), _t(sigma_next)
        t_mid = t + (t_next - t) * 0.5
        # Stage 1: an ancestral DPM-Solver-1 step to the midpoint.
        x_mid = _ancestral_dpm_1(x, t, t_mid, denoised, noise, eta)
        denoised_mid = denoise(x_mid, _sigma(t_mid), **extra_args)
        # Stage 2: the full step, using the midpoint's x0 prediction (with r = 1/2 the
        # second-order combination (1 - 1/(2r)) D + 1/(2r) D_mid is exactly D_mid).
        x = _ancestral_dpm_1(x, t, t_next, denoised_mid, noise, eta)
    return x


def _ancestral_dpm_1(
    x: Tensor, t: Tensor, t_to: Tensor, denoised: Tensor, noise: NoiseSource, eta: float
) -> Tensor:
    """A DPM-Solver-1 step from t to sigma_down(t_to) plus noise of std sigma_up."""
    sigma_down, sigma_up = ancestral_step(_sigma(t), _sigma(t_to), eta)
    t_down = _t(sigma_down)
    x = (_sigma(t_down) / _sigma(t)) * x - torch.expm1(t - t_down) * denoised
    return x + noise(_sigma(t), _sigma(t_to)) * sigma_up
