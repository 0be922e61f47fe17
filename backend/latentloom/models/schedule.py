"""The discrete training noise schedule of the SD family: 1000 steps, "scaled linear" betas.

Computed in float64 (as ComfyUI and the original LDM code do, via numpy) so that sigmas derived
from it, `sqrt((1 - a) / a)`, are exact to float32 precision at both ends of the schedule.
"""

from __future__ import annotations

from typing import Literal

import torch

TRAIN_STEPS = 1000
SD_BETA_START = 0.00085
SD_BETA_END = 0.012

BetaSchedule = Literal["scaled_linear", "linear"]


def alphas_cumprod(
    schedule: BetaSchedule = "scaled_linear",
    beta_start: float = SD_BETA_START,
    beta_end: float = SD_BETA_END,
    steps: int = TRAIN_STEPS,
) -> torch.Tensor:
    """Cumulative products of `1 - beta`, float64, one per training timestep."""
    if schedule == "scaled_linear":
        # Linear in sqrt(beta), as Stable Diffusion was trained.
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    elif schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    else:
        raise ValueError(
            f"beta schedule {schedule!r} is not supported; use 'scaled_linear' or 'linear'"
        )
    return torch.cumprod(1.0 - betas, dim=0)
