"""Improved PNDM (iPNDM): Adams-Bashforth on the ODE derivative, in sigma, with a warm start.

Zhang & Chen 2022 (the DEIS paper) replace PNDM's Runge-Kutta warm-up by lower-order
Adams-Bashforth steps: step i uses the derivatives of the last min(i + 1, 4) steps with the
classic fixed-step coefficients (1; 3/2, -1/2; 23/12, -16/12, 5/12; 55/24, -59/24, 37/24,
-9/24), whatever the actual step sizes, so one denoiser call per step. This is ComfyUI's
"ipndm" (from zju-pi/diff-sampler), and its last step to sigma = 0 lands on the prediction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_euler import to_d

# Adams-Bashforth weights by order, for the newest derivative first.
ADAMS_BASHFORTH: dict[int, tuple[float, ...]] = {
    1: (1.0,),
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}


def adams_bashforth_slope(derivatives: list[Tensor]) -> Tensor:
    """The AB combination of the given derivatives (oldest first), of their count's order."""
    weights = ADAMS_BASHFORTH[len(derivatives)]
    newest_first = derivatives[::-1]
    slope = newest_first[0] * weights[0]
    for weight, derivative in zip(weights[1:], newest_first[1:], strict=True):
        slope = slope + derivative * weight
    return slope


@torch.no_grad()
def sample_ipndm(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    max_order: int = 4,
) -> Tensor:
    """iPNDM, Zhang & Chen 2022 (DEIS paper), order 4 as in ComfyUI's sample_ipndm."""
    if max_order not in ADAMS_BASHFORTH:
        raise ValueError(f"ipndm's max_order must be 1 to 4, got {max_order}")
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    derivatives: list[Tensor] = []
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma, **extra_args)
        if callback is not None:
            callback(i, steps, x, denoised)
        derivatives = [*derivatives, to_d(x, sigma, denoised)][-max_order:]
        if sigma_next == 0:
            x = denoised
        else:
            x = x + (sigma_next - sigma) * adams_bashforth_slope(derivatives)
    return x
