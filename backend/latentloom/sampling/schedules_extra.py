"""Two closed-form schedules ComfyUI offers next to the classic ones: linear_quadratic, kl_optimal.

Neither reads the training table in between its ends: linear_quadratic scales a fixed shape
(fractions of sigma_max) and kl_optimal interpolates arctan(sigma) between sigma_max and
sigma_min. Unlike schedules.py (float64, cast once, to match diffusers), both round as
ComfyUI's do, step for step in float32 where it works in float32: ComfyUI is the only
reference they have, and they match its sigmas to the bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentloom.sampling.model_sampling import NoiseSchedule

LINEAR_QUADRATIC_THRESHOLD_NOISE = 0.025  # Mochi's default, which ComfyUI fixes


def _check_steps(n: int) -> None:
    if n < 1:
        raise ValueError(f"a schedule needs at least 1 step, got {n}")


def sigmas_linear_quadratic(
    schedule: NoiseSchedule,
    n: int,
    *,
    threshold_noise: float = LINEAR_QUADRATIC_THRESHOLD_NOISE,
) -> Tensor:
    """Genmo's Mochi schedule (2024), as ComfyUI's linear_quadratic: sigma_max * (1 - s(i)).

    s rises linearly from 0 to `threshold_noise` over the first n // 2 steps, then along a
    quadratic that continues it smoothly (same value and slope) and reaches 1 at step n, so the
    schedule ends exactly at 0. The shape was made for flow models (sigma in [0, 1]); on an SD
    model it spends the first half of the steps within 2.5% of sigma_max, as ComfyUI's does.
    """
    _check_steps(n)
    if n == 1:
        fractions = [0.0, 1.0]
    else:
        linear_steps = n // 2
        quadratic_steps = n - linear_steps
        # The quadratic q(i) = a i^2 + b i + c on [linear_steps, n] with q(linear_steps) equal to
        # threshold_noise, slope threshold_noise / linear_steps there, and q(n) = 1.
        excess = linear_steps - threshold_noise * n
        a = excess / (linear_steps * quadratic_steps**2)
        b = threshold_noise / linear_steps - 2 * excess / quadratic_steps**2
        c = a * linear_steps**2
        fractions = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        fractions += [a * i**2 + b * i + c for i in range(linear_steps, n)]
        fractions.append(1.0)
    # As ComfyUI rounds: the shape to float32 first, then times the float32 sigma_max. The last
    # fraction is exactly 1, so the schedule ends at an exact 0 without appending one.
    shape = torch.tensor([1.0 - f for f in fractions], dtype=torch.float32)
    return shape * torch.tensor(schedule.sigma_max, dtype=torch.float32)


def sigmas_kl_optimal(schedule: NoiseSchedule, n: int) -> Tensor:
    """KL-optimal schedule, Sabour et al. 2024 ("Align Your Steps", eq. for Gaussian data).

    sigma_i = tan((1 - t_i) * atan(sigma_max) + t_i * atan(sigma_min)) for t_i = i / (n - 1),
    then 0. For n = 1 ComfyUI divides 0 by 0 (a NaN sigma); here t_0 = 0, i.e. [sigma_max, 0].
    """
    _check_steps(n)
    # In float32 from the float32 sigma range, step for step as ComfyUI computes it, so the
    # sigmas are its own to the bit (float64 math differs by up to ~15 ulp at 150 steps).
    sigma_min, sigma_max = (
        float(torch.tensor(s, dtype=torch.float32))
        for s in (schedule.sigma_min, schedule.sigma_max)
    )
    t = torch.arange(n, dtype=torch.float32) / max(n - 1, 1)
    angles = t * math.atan(sigma_min) + (1 - t) * math.atan(sigma_max)
    return torch.cat([angles.tan(), angles.new_zeros(1)])
