"""DEIS ("tAB" variant): Adams-Bashforth in a variance-preserving time, with exact-weight steps.

Zhang & Chen 2022 integrate dx = (dsigma/dtau) * eps dtau, interpolating eps (the ODE
derivative in sigma space, (x - D) / sigma) by a Lagrange polynomial through the last few
steps in the time tau of a linear-beta VP process, and integrating that polynomial against
dsigma/dtau. The time map and its VP process are fixed, as in ComfyUI's DEIS (taken from
zju-pi/diff-sampler): the EDM defaults sigma in [0.002, 80] with epsilon_s = 1e-3, whatever
the model. The integrals are computed as ComfyUI does, by a 10,000-point sum over the step
(including both ends, times h / N), so the coefficients are the same numbers (ours in float64).

The first step is Euler, then orders rise to max_order (3); a step to sigma = 0 is Euler.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import to_d

# The VP process DEIS maps sigma onto (EDM's range), and the quadrature size, as in ComfyUI.
VP_SIGMA_MIN, VP_SIGMA_MAX, VP_EPSILON_S = 0.002, 80.0, 1e-3
QUADRATURE_POINTS = 10_000


def vp_betas() -> tuple[float, float]:
    """beta_min and beta_d of the linear-beta VP process with the EDM sigma range."""
    log_max = math.log(VP_SIGMA_MAX**2 + 1)
    beta_d = 2 * (math.log(VP_SIGMA_MIN**2 + 1) / VP_EPSILON_S - log_max) / (VP_EPSILON_S - 1)
    return log_max - 0.5 * beta_d, beta_d


def vp_time(sigmas: Tensor) -> Tensor:
    """The VP time tau of each sigma (float64): the inverse of sigma(tau) below."""
    beta_min, beta_d = vp_betas()
    log_var = (sigmas.to(torch.float64) ** 2 + 1).log()
    return ((beta_min**2 + 2 * beta_d * log_var).sqrt() - beta_min) / beta_d


def dsigma_dtau(tau: Tensor) -> Tensor:
    """d sigma / d tau for sigma(tau) = sqrt(1 / alpha(tau) - 1), log alpha = -beta_d tau^2 / 2
    - beta_min tau; written as ComfyUI's integrand, -0.5 (log alpha)' / sqrt(alpha (1 - alpha))."""
    beta_min, beta_d = vp_betas()
    alpha = (-0.5 * beta_d * tau**2 - beta_min * tau).exp()
    d_log_alpha = -beta_d * tau - beta_min
    return -0.5 * d_log_alpha / (alpha * (1 - alpha)).sqrt()


def deis_coefficients(taus: Tensor, i: int, order: int) -> list[float]:
    """Weights of the derivatives at steps i, i - 1, ... for the step taus[i] -> taus[i + 1]."""
    nodes = [taus[i - k] for k in range(order)]
    grid = torch.linspace(
        float(taus[i]), float(taus[i + 1]), QUADRATURE_POINTS, dtype=torch.float64
    )
    weight = dsigma_dtau(grid) * (taus[i + 1] - taus[i]) / QUADRATURE_POINTS
    coefficients = []
    for j in range(order):
        basis = torch.ones_like(grid)
        for k in range(order):
            if k != j:
                basis = basis * (grid - nodes[k]) / (nodes[j] - nodes[k])
        coefficients.append(float((weight * basis).sum()))
    return coefficients


@torch.no_grad()
def sample_deis(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    max_order: int = 3,
) -> Tensor:
    """DEIS (tAB, order 3), Zhang & Chen 2022, with ComfyUI's coefficients."""
    if not 1 <= max_order <= 4:
        raise ValueError(f"deis's max_order must be 1 to 4, got {max_order}")
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    taus = vp_time(sigmas.cpu())
    derivatives: list[Tensor] = []
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        derivatives = [*derivatives, to_d(x, sigma, denoised)][-max_order:]
        order = len(derivatives) if sigma_next > 0 else 1
        if order == 1:
            x = x + (sigma_next - sigma) * derivatives[-1]
            continue
        coefficients = deis_coefficients(taus, i, order)
        for coefficient, derivative in zip(coefficients, derivatives[::-1], strict=True):
            x = x + coefficient * derivative
    return x
