"""Stochastic samplers for rectified-flow models (SD 3.x, FLUX), where x = (1 - s) x0 + s n.

The deterministic samplers need no variant: the flow ODE dx/ds = n - x0 = (x - D(x, s)) / s
has exactly the k-diffusion form they solve. Samplers that add noise do: a variance-exploding
step (x + sigma_up * n) leaves a flow latent with too little of x0's scale (1 - s) and too much
noise. The variants here keep every x on the flow path, from the definitions:

* ancestral (euler_ancestral, dpm_2_ancestral, dpmpp_2s_ancestral): a deterministic step to
  s_down = s_next * (1 + (s_next / s - 1) * eta) (eta = 1: s_next^2 / s), whose result is
  (1 - s_down) x0 + s_down n; scaling it by a = (1 - s_next) / (1 - s_down) restores x0's
  weight for s_next, and fresh noise of std sqrt(s_next^2 - (a s_down)^2) brings the noise up
  to s_next. This is ComfyUI's "RF" ancestral step, which the same pictures need.
* DPM-Solver++ steps in data prediction with alpha = 1 - s and half-log-SNR
  lambda = log((1 - s) / s) (Lu et al. 2022 write them for any alpha, sigma); the first-order
  step from s to u is x_u = (u / s) x + (1 - u / s) D, so the 2S midpoint and 2M SDE updates
  are Lu et al.'s with alpha_t = 1 - s. lambda is -inf at s = 1: a step starting there takes
  its midpoint / SDE decay from s = 0.9999, as ComfyUI does.
* LCM: jump to x0, then re-noise to s_next on the flow path: s_next n + (1 - s_next) x0.

dpmpp_sde and dpmpp_3m_sde have their flow forms in samplers_flow_sde.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import _dpm_2_step, require_noise

# lambda = log((1 - s) / s) is -inf at s = 1; steps starting there use this sigma instead.
FLOW_SIGMA_BELOW_ONE = 0.9999


def flow_ancestral_step(
    sigma: Tensor, sigma_next: Tensor, eta: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(s_down, x0-weight ratio a, renoise std) for an ancestral step from sigma to sigma_next."""
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    ratio = (1 - sigma_next) / (1 - sigma_down)
    renoise = (sigma_next**2 - (sigma_down * ratio) ** 2).clamp(min=0).sqrt()
    return sigma_down, ratio, renoise


def _lerp_towards(x: Tensor, denoised: Tensor, sigma: Tensor, sigma_to: Tensor) -> Tensor:
    """The first-order flow step from sigma to sigma_to: (u / s) x + (1 - u / s) D."""
    ratio = sigma_to / sigma
    return ratio * x + (1 - ratio) * denoised


def _lambda(sigma: Tensor) -> Tensor:
    """Half-log-SNR of a flow sigma: log((1 - s) / s)."""
    return ((1 - sigma) / sigma).log()


def _sigma_of_lambda(value: Tensor) -> Tensor:
    return (value.exp() + 1).reciprocal()


def _below_one(sigma: Tensor) -> Tensor:
    return sigma.clamp(max=FLOW_SIGMA_BELOW_ONE)


@torch.no_grad()
def sample_euler_ancestral_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """Euler ancestral for rectified flow (ComfyUI's euler_ancestral_RF)."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "euler_ancestral")
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_down, ratio, renoise = flow_ancestral_step(sigma, sigma_next, eta)
        x = _lerp_towards(x, denoised, sigma, sigma_down)
        x = ratio * x + noise(sigma, sigma_next) * renoise
    return x


@torch.no_grad()
def sample_dpm_2_ancestral_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver-2 to s_down, then the flow re-noise (dpm_2_ancestral for rectified flow)."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "dpm_2_ancestral")
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_down, ratio, renoise = flow_ancestral_step(sigma, sigma_next, eta)
        x = _dpm_2_step(denoise, x, sigma, sigma_down, denoised, extra_args)
        x = ratio * x + noise(sigma, sigma_next) * renoise
    return x


@torch.no_grad()
def sample_dpmpp_2s_ancestral_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(2S) ancestral for rectified flow (ComfyUI's dpmpp_2s_ancestral_RF)."""
    extra_args = extra_args or {}
    step_noise = require_noise(noise, "dpmpp_2s_ancestral") if eta > 0 else None
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_down, ratio, renoise = flow_ancestral_step(sigma, sigma_next, eta)
        # The midpoint half-way in lambda between sigma and s_down.
        lam, lam_down = _lambda(_below_one(sigma)), _lambda(sigma_down)
        sigma_mid = _sigma_of_lambda(lam + (lam_down - lam) / 2)
        x_mid = _lerp_towards(x, denoised, sigma, sigma_mid)
        denoised_mid = denoise(x_mid, sigma_mid, **extra_args)
        x = _lerp_towards(x, denoised_mid, sigma, sigma_down)
        if step_noise is not None:
            x = ratio * x + step_noise(sigma, sigma_next) * renoise
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(2M) SDE (midpoint), Lu et al. 2022, with alpha = 1 - sigma (flow)."""
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
        start = _below_one(sigma)
        h = _lambda(sigma_next) - _lambda(start)
        eta_h = eta * h
        alpha_next = 1 - sigma_next
        # alpha_next * (1 - exp(-(1 + eta) h)): the weight of x0 with the SDE's extra decay.
        weight = alpha_next * -torch.expm1(-h - eta_h)
        x = (sigma_next / start) * torch.exp(-eta_h) * x + weight * denoised
        if old_denoised is not None and h_last is not None:
            x = x + 0.5 * weight * (h / h_last) * (denoised - old_denoised)
        if eta:
            x = x + noise(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * eta_h)).sqrt()
        old_denoised, h_last = denoised, h
    return x


@torch.no_grad()
def sample_lcm_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """LCM multistep sampling (Luo et al. 2023), re-noising on the flow path."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "lcm")
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        x = denoised
        if sigma_next > 0:
            x = sigma_next * noise(sigma, sigma_next) + (1 - sigma_next) * denoised
    return x
