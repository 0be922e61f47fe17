"""Single-step samplers in the Euler family (Karras et al. 2022 and k-diffusion).

All work in sigma space, x = x0 + sigma * noise, where the probability-flow ODE is
dx/dsigma = (x - D(x, sigma)) / sigma. Each step makes one or two denoiser calls; the last step
(to sigma = 0) is always a plain Euler step, since a second evaluation at sigma = 0 is useless.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """The ODE derivative dx/dsigma given the denoiser's x0 prediction."""
    return (x - denoised) / sigma


def ancestral_step(sigma_from: Tensor, sigma_to: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """Split a step into a deterministic move to sigma_down and fresh noise of std sigma_up.

    sigma_down^2 + sigma_up^2 = sigma_to^2, so the result has the right noise level; eta = 1
    re-noises as much as DDPM ancestral sampling, eta = 0 is the ODE step.
    """
    if eta == 0:
        return sigma_to, torch.zeros_like(sigma_to)
    variance = sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2
    sigma_up = torch.minimum(sigma_to, eta * variance.sqrt())
    sigma_down = (sigma_to**2 - sigma_up**2).sqrt()
    return sigma_down, sigma_up


def require_noise(noise: NoiseSource | None, sampler: str) -> NoiseSource:
    """Stochastic samplers refuse to invent randomness (a hidden global RNG breaks seeds)."""
    if noise is None:
        raise ValueError(
            f"sampler {sampler!r} is stochastic and needs a noise source; pass "
            f"noise=GaussianNoise.from_seed(x, seed) (see latentloom.sampling.noise)"
        )
    return noise


@torch.no_grad()
def sample_euler(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """Euler's method on the probability-flow ODE, Karras et al. 2022 (Algorithm 2, no churn)."""
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    for i in range(steps):
        denoised = denoise(x, sigmas[i], **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_ddim(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """Deterministic DDIM (eta = 0), Song et al. 2020; in sigma space it is exactly Euler."""
    # x_prev = x0 + sigma_prev * eps with eps = (x - x0) / sigma is the Euler update verbatim.
    return sample_euler(denoise, x, sigmas, extra_args=extra_args, callback=callback)


@torch.no_grad()
def sample_euler_ancestral(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """Euler ancestral: an Euler step to sigma_down plus fresh noise (k-diffusion, Crowson)."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "euler_ancestral")
    steps = len(sigmas) - 1
    for i in range(steps):
        denoised = denoise(x, sigmas[i], **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        if sigma_down == 0:
            # The Euler step to 0 lands on the prediction; taking it as is keeps the last bits
            # equal to ComfyUI's, and no noise is drawn for it.
            x = denoised
            continue
        x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        x = x + noise(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


@torch.no_grad()
def sample_heun(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """Heun's second-order method, Karras et al. 2022 (Algorithm 1, deterministic)."""
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        d = to_d(x, sigma, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + d * dt
            continue
        x_2 = x + d * dt
        d_2 = to_d(x_2, sigma_next, denoise(x_2, sigma_next, **extra_args))
        x = x + (d + d_2) / 2 * dt
    return x


def _log_midpoint(sigma_a: Tensor, sigma_b: Tensor) -> Tensor:
    """The geometric mean of two sigmas: the midpoint in log-sigma."""
    return sigma_a.log().lerp(sigma_b.log(), 0.5).exp()


@torch.no_grad()
def sample_dpm_2(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """DPM-Solver-2 (midpoint in log-sigma), Lu et al. 2022, as in Karras et al. 2022."""
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        x = _dpm_2_step(denoise, x, sigma, sigma_next, denoised, extra_args)
    return x


def _dpm_2_step(
    denoise: Denoiser,
    x: Tensor,
    sigma: Tensor,
    sigma_next: Tensor,
    denoised: Tensor,
    extra_args: dict[str, Any],
) -> Tensor:
    """One DPM-2 step from sigma to sigma_next (Euler when sigma_next is 0)."""
    d = to_d(x, sigma, denoised)
    if sigma_next == 0:
        return x + d * (sigma_next - sigma)
    sigma_mid = _log_midpoint(sigma, sigma_next)
    x_2 = x + d * (sigma_mid - sigma)
    d_2 = to_d(x_2, sigma_mid, denoise(x_2, sigma_mid, **extra_args))
    return x + d_2 * (sigma_next - sigma)


@torch.no_grad()
def sample_dpm_2_ancestral(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver-2 to sigma_down plus fresh noise, ancestral variant (k-diffusion, Crowson)."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "dpm_2_ancestral")
    steps = len(sigmas) - 1
    for i in range(steps):
        denoised = denoise(x, sigmas[i], **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        x = _dpm_2_step(denoise, x, sigmas[i], sigma_down, denoised, extra_args)
        if sigmas[i + 1] > 0:
            x = x + noise(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


@torch.no_grad()
def sample_lcm(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """LCM multistep sampling, Luo et al. 2023: jump to x0, then re-noise to the next sigma."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "lcm")
    steps = len(sigmas) - 1
    for i in range(steps):
        denoised = denoise(x, sigmas[i], **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1]
    return x
