"""DPM-Solver++ SDE and (3M) SDE for rectified-flow models (x = (1 - s) x0 + s n).

Lu et al. 2022 write DPM-Solver++ for any alpha_t, sigma_t in data prediction with
lambda = log(alpha / sigma); the SD forms (samplers_dpmpp*.py) are the case alpha = 1. For a
flow model alpha = 1 - s, so lambda = log((1 - s) / s) and every x0 weight gains a factor
alpha_t; the SDE noise keeps std s_next * sqrt(1 - exp(-2 eta h)), as in the SD form. The
single-step SDE's ancestral split is done on the variance-exploding sigma s / (1 - s) =
exp(-lambda) (where it is defined) and its noise scaled by alpha, which puts it back on the
flow path. lambda is -inf at s = 1, so a step starting there takes its coefficients from
s = 0.9999 (samplers_flow.FLOW_SIGMA_BELOW_ONE), as ComfyUI offsets its first sigma.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import ancestral_step, require_noise
from latentloom.sampling.samplers_flow import FLOW_SIGMA_BELOW_ONE


def _lambda(sigma: Tensor) -> Tensor:
    return ((1 - sigma) / sigma).log()


def _sigma_of_lambda(value: Tensor) -> Tensor:
    return (value.exp() + 1).reciprocal()


@torch.no_grad()
def sample_dpmpp_3m_sde_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(3M) SDE, Lu et al. 2022, with alpha = 1 - sigma (flow)."""
    extra_args = extra_args or {}
    if eta > 0:
        noise = require_noise(noise, "dpmpp_3m_sde")
    steps = len(sigmas) - 1
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
            start = sigma.clamp(max=FLOW_SIGMA_BELOW_ONE)
            h = _lambda(sigma_next) - _lambda(start)
            h_eta = h * (eta + 1)
            alpha_next = 1 - sigma_next
            x = (sigma_next / start) * (-h * eta).exp() * x - alpha_next * torch.expm1(
                -h_eta
            ) * denoised
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if h_2 is not None and h_1 is not None and denoised_1 is not None:
                assert denoised_2 is not None  # set together with h_2
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + alpha_next * (phi_2 * d1 - phi_3 * d2)
            elif h_1 is not None and denoised_1 is not None:
                x = x + alpha_next * phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta > 0:
                assert noise is not None
                x = x + noise(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * h * eta)).sqrt()
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


def _ancestral_flow_dpm_1(
    x: Tensor,
    lam: Tensor,
    lam_to: Tensor,
    denoised: Tensor,
    noise: NoiseSource,
    noise_span: tuple[Tensor, Tensor],
    eta: float,
) -> Tensor:
    """A DPM-Solver-1 step from lambda to the ancestral split of lam_to, plus alpha-scaled noise.

    The split is taken on the variance-exploding sigmas exp(-lambda), where it is defined.
    """
    down, up = ancestral_step(lam.neg().exp(), lam_to.neg().exp(), eta)
    lam_down = down.log().neg()
    alpha, alpha_to = 1 - _sigma_of_lambda(lam), 1 - _sigma_of_lambda(lam_to)
    h = lam_down - lam
    x = (alpha_to / alpha) * (-h).exp() * x - alpha_to * torch.expm1(-h) * denoised
    return x + alpha_to * noise(*noise_span) * up


@torch.no_grad()
def sample_dpmpp_sde_flow(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++ SDE (midpoint r = 1/2), Lu et al. 2022, with alpha = 1 - sigma (flow)."""
    extra_args = extra_args or {}
    noise = require_noise(noise, "dpmpp_sde")
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        lam, lam_next = _lambda(sigma.clamp(max=FLOW_SIGMA_BELOW_ONE)), _lambda(sigma_next)
        lam_mid = lam + (lam_next - lam) * 0.5
        sigma_mid = _sigma_of_lambda(lam_mid)
        x_mid = _ancestral_flow_dpm_1(x, lam, lam_mid, denoised, noise, (sigma, sigma_mid), eta)
        denoised_mid = denoise(x_mid, sigma_mid, **extra_args)
        # With r = 1/2 the second-order combination is the midpoint's prediction alone.
        x = _ancestral_flow_dpm_1(x, lam, lam_next, denoised_mid, noise, (sigma, sigma_next), eta)
    return x
