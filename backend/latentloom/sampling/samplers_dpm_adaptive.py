"""DPM-Solver-23 with adaptive step size (Lu et al. 2022), as k-diffusion's sample_dpm_adaptive.

Each attempted step from s to s + h (in t = -log(sigma)) computes a second-order and a
third-order DPM-Solver result from the same three model evaluations (the order-2 solver with
r1 = 1/3 shares its midpoint with the order-3 one); their difference, scaled by
max(atol, rtol * |x|), estimates the error. An integral controller then scales h by
1 + atan(error^(-1/3) - 1); the step is kept when that factor is at least 0.81 and redone
shorter otherwise. Settings are ComfyUI's (rtol 0.05, atol 0.0078, h_init 0.05, eta 0).

Like dpm_fast it needs only the schedule's first sigma and last nonzero one, integrates from
the one to the other and returns x there, without the final jump to 0.

How many model calls it makes depends on the data: three per attempted step, as many steps
as the error control needs. Progress therefore cannot count steps. Every model call reports
(i, n) with n = len(sigmas) - 1 and i = floor(n * the fraction of the way from the first to
the last sigma in log-sigma already accepted), capped at n - 1: the index never decreases,
may repeat while the solver refines or retries a step, and may skip values on long steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.samplers_dpm_solver import (
    StepEvaluator,
    dpm_solver_2_step,
    dpm_solver_3_step,
    solver_span,
)

ADAPTIVE_ORDER = 3
RTOL, ATOL, H_INIT = 0.05, 0.0078, 0.05
ACCEPT_SAFETY = 0.81
END_TOLERANCE = 1e-5  # in t: closer than this to the end counts as arrived
ERROR_EPSILON = 1e-8  # keeps 1 / error finite when the two solvers agree exactly


def step_factor(error: float) -> float:
    """The integral controller's step-size factor (k-diffusion's PID with only the I term)."""
    factor = (1 / (error + ERROR_EPSILON)) ** (1 / ADAPTIVE_ORDER)
    return 1 + math.atan(factor - 1)  # a soft limiter: at most ~2.57x longer, never negative


@torch.no_grad()
def sample_dpm_adaptive(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """DPM-Solver-23 with adaptive steps, Lu et al. 2022 (k-diffusion's sample_dpm_adaptive)."""
    total = len(sigmas) - 1
    if total < 1:
        return x
    t_start, t_end = solver_span(sigmas)
    span = float(t_end - t_start)
    s = t_start
    atol = torch.tensor(ATOL, device=x.device)
    rtol = torch.tensor(RTOL, device=x.device)

    def progress(calls: int) -> int:
        done = float(s - t_start) / span if span != 0 else 1.0
        return min(total - 1, math.floor(total * done))

    evaluate = StepEvaluator(denoise, extra_args or {}, callback, total, progress)
    # Flipped (ascending) sigmas integrate backwards, towards more noise, as in k-diffusion.
    forward = span >= 0
    h = H_INIT if forward else -H_INIT
    x_prev = x
    while s < t_end - END_TOLERANCE if forward else s > t_end + END_TOLERANCE:
        evaluate.cache = {}
        t = torch.minimum(t_end, s + h) if forward else torch.maximum(t_end, s + h)
        x_low = dpm_solver_2_step(evaluate, x, s, t, r1=1 / 3)
        x_high = dpm_solver_3_step(evaluate, x, s, t)
        scale = torch.maximum(atol, rtol * torch.maximum(x_low.abs(), x_prev.abs()))
        error = float(torch.linalg.norm((x_low - x_high) / scale) / x.numel() ** 0.5)
        if not math.isfinite(error):
            # k-diffusion would reject the step forever (a NaN factor is never accepted).
            raise ValueError(
                f"dpm_adaptive: the step's error estimate is {error} at sigma "
                f"{math.exp(-float(s)):.4g}: the model returned NaN or inf. Try another sampler "
                f"or a float32 model to see where it starts"
            )
        factor = step_factor(error)
        if factor >= ACCEPT_SAFETY:
            x_prev, x, s = x_low, x_high, t
        h *= factor
    return x
