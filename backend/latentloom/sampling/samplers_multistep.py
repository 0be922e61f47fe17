"""Multistep samplers that reuse earlier denoiser outputs: LMS and UniPC.

Both spend one denoiser call per step and fit a polynomial through the last few outputs.
LMS integrates the ODE derivative in sigma; UniPC (like DPM-Solver++) integrates the x0
prediction in t = -log(sigma) and adds a corrector that reuses the next step's evaluation.

UniPC follows ComfyUI's: "uni_pc" is the B(h) = h variant (bh1), "uni_pc_bh2" B(h) = e^h - 1,
and a schedule ending at sigma = 0 ends at sigma = 0.001 instead, so the result keeps that
much noise (lambda = -log(sigma) must stay finite for the last step's algebra).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from numpy.polynomial import Polynomial
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import to_d

UNIPC_FINAL_SIGMA = 0.001  # where ComfyUI's UniPC stops when the schedule ends at 0
UniPCVariant = Literal["bh1", "bh2"]


def _lms_coefficient(sigmas: list[float], i: int, order: int, j: int) -> float:
    """The integral over [sigma_i, sigma_i+1] of the Lagrange basis polynomial of node i - j.

    The nodes are sigma_i, sigma_i-1, ..., sigma_i-order+1. k-diffusion and diffusers integrate
    numerically (scipy quad); the polynomial integrates exactly, so no scipy is needed.
    """
    basis = Polynomial([1.0])
    for k in range(order):
        if k != j:
            basis = basis * Polynomial([-sigmas[i - k], 1.0]) / (sigmas[i - j] - sigmas[i - k])
    antiderivative = basis.integ()
    return float(antiderivative(sigmas[i + 1]) - antiderivative(sigmas[i]))


@torch.no_grad()
def sample_lms(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    order: int = 4,
) -> Tensor:
    """Linear multistep (Adams-Bashforth in sigma), as in Karras et al. 2022 / k-diffusion."""
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    sigma_list = [float(s) for s in sigmas]
    derivatives: list[Tensor] = []
    for i in range(steps):
        denoised = denoise(x, sigmas[i], **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        derivatives = [*derivatives, to_d(x, sigmas[i], denoised)][-order:]
        current_order = min(i + 1, order)
        for j in range(current_order):
            coefficient = _lms_coefficient(sigma_list, i, current_order, j)
            x = x + coefficient * derivatives[-1 - j]
    return x


def _unipc_step(
    x: Tensor,
    lambdas: Tensor,
    sigmas: Tensor,
    history: list[tuple[int, Tensor]],
    target: int,
    order: int,
    variant: UniPCVariant,
    denoised_at_target: Tensor | None = None,
) -> Tensor:
    """One UniP (predictor) or, given the target's x0 prediction, UniC (corrector) update.

    Goes from the newest history point (index, x0 prediction) to sigmas[target], following
    Zhao et al. 2023, Algorithms 1-2 in data-prediction form, and the reference
    implementation's conventions: rho = 1/2 for the order-2 predictor and the order-1
    corrector instead of solving the 1x1 system.
    """
    start, m0 = history[-1]
    h = lambdas[target] - lambdas[start]
    x_linear = (sigmas[target] / sigmas[start]) * x - torch.expm1(-h).to(x.dtype) * m0
    b_h = _b_of_h(-h, variant)
    rks = [(lambdas[history[-1 - k][0]] - lambdas[start]) / h for k in range(1, order)]
    d1s = [(history[-1 - k][1] - m0) / float(rk) for k, rk in enumerate(rks, start=1)]
    if denoised_at_target is None:
        if order == 1:
            return x_linear
        rhos = [0.5] if order == 2 else _unipc_rhos(rks, -h, b_h, order - 1)
    else:
        rhos = [0.5] if order == 1 else _unipc_rhos([*rks, h.new_ones(())], -h, b_h, order)
        d1s = [*d1s, denoised_at_target - m0]
    residual = sum(rho * d1 for rho, d1 in zip(rhos, d1s, strict=True))
    return x_linear - float(b_h) * residual


def _b_of_h(hh: Tensor, variant: UniPCVariant) -> Tensor:
    """UniPC's B(h) for hh = -h: bh1 takes hh itself, bh2 e^hh - 1."""
    return hh if variant == "bh1" else torch.expm1(hh)


def _unipc_rhos(rks: list[Tensor], hh: Tensor, b_h: Tensor, order: int) -> list[float]:
    """Solve sum_k rho_k r_k^(i-1) = b_i (i = 1..order), the UniPC order conditions."""
    # b_i = i! * phi_{i+1}(hh) * hh / B(h) with phi computed by its recurrence.
    h_phi_k = torch.expm1(hh) / hh - 1
    factorial = 1
    b = []
    for i in range(1, order + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    r = torch.stack(rks)
    matrix = torch.stack([r ** (i - 1) for i in range(1, order + 1)])
    return [float(rho) for rho in torch.linalg.solve(matrix, torch.stack(b))]


@torch.no_grad()
def sample_uni_pc(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    order: int = 3,
    variant: UniPCVariant = "bh1",
) -> Tensor:
    """UniPC (bh1 variant), Zhao et al. 2023: multistep predictor with a free corrector."""
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    if sigmas[-1] == 0:
        sigmas = torch.cat([sigmas[:-1], sigmas.new_full((1,), UNIPC_FINAL_SIGMA)])
    # Float64 for the coefficient algebra.
    lambdas = sigmas.to(torch.float64).log().neg()
    history: list[tuple[int, Tensor]] = []
    x_start, previous_order = x, 0
    for i in range(steps):
        denoised = denoise(x, sigmas[i], **extra_args)
        if previous_order:
            # The corrector reuses this evaluation, so it costs no extra model call; the model
            # output itself stays the one taken at the uncorrected point.
            x = _unipc_step(x_start, lambdas, sigmas, history, i, previous_order, variant, denoised)
        history = [*history, (i, denoised)][-order:]
        if callback is not None:
            callback(i, steps, x, denoised)
        # Warm up from order 1, and lower the order near the end, where few steps remain.
        previous_order = min(order, i + 1, steps - i)
        x_start = x
        x = _unipc_step(x, lambdas, sigmas, history, i + 1, previous_order, variant)
    return x


@torch.no_grad()
def sample_uni_pc_bh2(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """UniPC with B(h) = e^h - 1 (bh2), Zhao et al. 2023."""
    return sample_uni_pc(
        denoise, x, sigmas, extra_args=extra_args, callback=callback, variant="bh2"
    )
