"""DPM-Solver (Lu et al. 2022) in noise prediction, and DPM-Solver-fast, as k-diffusion has them.

With t = -log(sigma) the probability-flow ODE in sigma space is dx/dt = -sigma(t) eps, whose
exact solution over a step of length h integrates eps against exp(-t); DPM-Solver-k
approximates eps along the step by k evaluations at fractions r of it (single-step: nothing is
carried over from the previous step).

dpm_fast ignores the schedule's shape: like ComfyUI's it spends exactly n = len(sigmas) - 1
model evaluations on steps of equal length in t, from the first sigma to the last nonzero one
(third-order steps, the remainder made up by one of order 1 or 2, or 2 then 1). Like
ComfyUI's, it stops at that last nonzero sigma and returns x there: the final jump to 0 that
other samplers take is skipped, so the result keeps that much noise. Progress is reported once
per model evaluation: n callbacks, the i-th with the point just evaluated and its prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from latentloom.sampling.noise import NoiseSource
from latentloom.sampling.protocols import Denoiser, StepCallback

# eps at (x, t); the key names the stage, so a stage shared by two solvers is evaluated once.
EpsFn = Callable[[str, Tensor, Tensor], Tensor]


def sigma_of(t: Tensor) -> Tensor:
    return t.neg().exp()


def t_of(sigma: Tensor) -> Tensor:
    return sigma.log().neg()


def solver_span(sigmas: Tensor) -> tuple[Tensor, Tensor]:
    """t at the first sigma and at the last nonzero one (where dpm_fast/adaptive stop)."""
    sigma_end = sigmas[-2] if sigmas[-1] == 0 else sigmas[-1]
    return t_of(sigmas[0]), t_of(sigma_end)


def dpm_solver_1_step(eps_at: EpsFn, x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
    """DPM-Solver-1 (DDIM): eps held constant over the step."""
    h = t_next - t
    return x - sigma_of(t_next) * h.expm1() * eps_at("eps", x, t)


def dpm_solver_2_step(
    eps_at: EpsFn, x: Tensor, t: Tensor, t_next: Tensor, r1: float = 1 / 2
) -> Tensor:
    """DPM-Solver-2: one more evaluation at fraction r1 of the step."""
    h = t_next - t
    eps = eps_at("eps", x, t)
    s1 = t + r1 * h
    u1 = x - sigma_of(s1) * (r1 * h).expm1() * eps
    eps_r1 = eps_at("eps_r1", u1, s1)
    sigma_next = sigma_of(t_next)
    return x - sigma_next * h.expm1() * eps - sigma_next / (2 * r1) * h.expm1() * (eps_r1 - eps)


def dpm_solver_3_step(
    eps_at: EpsFn, x: Tensor, t: Tensor, t_next: Tensor, r1: float = 1 / 3, r2: float = 2 / 3
) -> Tensor:
    """DPM-Solver-3: evaluations at fractions r1 and r2 of the step."""
    h = t_next - t
    eps = eps_at("eps", x, t)
    s1, s2 = t + r1 * h, t + r2 * h
    u1 = x - sigma_of(s1) * (r1 * h).expm1() * eps
    eps_r1 = eps_at("eps_r1", u1, s1)
    u2 = (
        x
        - sigma_of(s2) * (r2 * h).expm1() * eps
        - sigma_of(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (eps_r1 - eps)
    )
    eps_r2 = eps_at("eps_r2", u2, s2)
    sigma_next = sigma_of(t_next)
    return x - sigma_next * h.expm1() * eps - sigma_next / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)


DPM_SOLVER_STEPS = {1: dpm_solver_1_step, 2: dpm_solver_2_step, 3: dpm_solver_3_step}


def fast_orders(nfe: int) -> list[int]:
    """Orders of dpm_fast's equal steps for nfe evaluations (they sum to nfe)."""
    m = math.floor(nfe / 3) + 1
    if nfe % 3 == 0:
        return [3] * (m - 2) + [2, 1]
    return [3] * (m - 1) + [nfe % 3]


class StepEvaluator:
    """eps from the denoiser, cached per stage of one step, with progress reported per call."""

    def __init__(
        self,
        denoise: Denoiser,
        extra_args: dict[str, Any],
        callback: StepCallback | None,
        total: int,
        progress: Callable[[int], int],
    ) -> None:
        self._denoise = denoise
        self._extra_args = extra_args
        self._callback = callback
        self._total = total
        self._progress = progress  # model calls so far -> step index to report
        self.calls = 0
        self.cache: dict[str, Tensor] = {}

    def __call__(self, key: str, x: Tensor, t: Tensor) -> Tensor:
        if key not in self.cache:
            sigma = sigma_of(t)
            denoised = self._denoise(x, sigma, **self._extra_args)
            if self._callback is not None:
                self._callback(self._progress(self.calls), self._total, x, denoised)
            self.calls += 1
            self.cache[key] = (x - denoised) / sigma
        return self.cache[key]


@torch.no_grad()
def sample_dpm_fast(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    extra_args: dict[str, Any] | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
) -> Tensor:
    """DPM-Solver-fast, Lu et al. 2022: len(sigmas) - 1 evaluations, equal steps in log-sigma."""
    nfe = len(sigmas) - 1
    if nfe < 1:
        return x
    t_start, t_end = solver_span(sigmas)
    ts = torch.linspace(float(t_start), float(t_end), math.floor(nfe / 3) + 2, device=x.device)
    evaluate = StepEvaluator(denoise, extra_args or {}, callback, nfe, lambda calls: calls)
    for i, order in enumerate(fast_orders(nfe)):
        evaluate.cache = {}  # single-step: nothing carries over between steps
        x = DPM_SOLVER_STEPS[order](evaluate, x, ts[i], ts[i + 1])
    return x
