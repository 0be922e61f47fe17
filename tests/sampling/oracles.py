"""Test oracles for samplers: an exact analytic denoiser and a driver for diffusers' schedulers.

If every element of the data is drawn from N(mu, s^2), the noisy x = x0 + sigma * noise has the
closed-form posterior mean D(x, sigma) = (x s^2 + mu sigma^2) / (s^2 + sigma^2): a perfect
denoiser with no network, so any difference between two samplers is the samplers' own.

diffusers' schedulers expect the model's epsilon (or v) for their own `sample`, which lives in
sigma space (x) for the k-diffusion ports and in variance-preserving space (x / sqrt(1+sigma^2))
for DPM-Solver/UniPC/DDIM/LCM; `run_diffusers` converts between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.sampling.discrete import DiscreteSchedule

SD_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}
SHAPE = (2, 4, 8, 8)

# diffusers 0.42 passes torch tensors through numpy in set_timesteps, which numpy 2 flags with
# DeprecationWarnings under torch 2.13; they are diffusers', harmless, and not about our code.
IGNORE_DIFFUSERS_NUMPY_WARNINGS = [
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
]


@dataclass(frozen=True)
class GaussianData:
    """Data N(mu, s^2) per element, and its exact denoiser."""

    mu: Tensor
    s: float

    @classmethod
    def make(cls, seed: int = 0, s: float = 0.5) -> GaussianData:
        generator = torch.Generator().manual_seed(seed)
        return cls(mu=torch.randn(SHAPE, generator=generator), s=s)

    def denoise(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        return (x * self.s**2 + self.mu * sigma**2) / (self.s**2 + sigma**2)

    def eps(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """The noise prediction an ideal epsilon model makes at sigma-space x."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        return (x - self.denoise(x, sigma)) / sigma

    def ode_solution(self, x_start: Tensor, sigma_start: float) -> Tensor:
        """Where the probability-flow ODE from (x_start, sigma_start) lands at sigma = 0."""
        return self.mu + (x_start - self.mu) * self.s / (self.s**2 + sigma_start**2) ** 0.5


def start_noise(seed: int = 1) -> Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def sigma_from_alphas(alphas_cumprod: Tensor, timestep: Tensor) -> float:
    alpha = alphas_cumprod[int(timestep)].double()
    return float(((1 - alpha) / alpha).sqrt())


SigmaOf = Callable[[Any, Tensor], float]


def step_sigma(scheduler: Any, timestep: Tensor) -> float:
    """The sigma the scheduler's `step` is about to use (first-order/multistep schedulers)."""
    index = scheduler.step_index if scheduler.step_index is not None else 0
    return float(scheduler.sigmas[index])


def run_diffusers(
    scheduler: Any,
    data: GaussianData,
    noise: Tensor,
    sigma_of: SigmaOf = step_sigma,
    *,
    variance_preserving: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """diffusers' denoising loop with the analytic model; returns the final (clean) sample."""
    sample = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        scheduler.scale_model_input(sample, t)  # only to advance the scheduler's own state
        sigma = sigma_of(scheduler, t)
        x = sample * (1 + sigma**2) ** 0.5 if variance_preserving else sample
        eps = data.eps(x, sigma)
        extra = {} if generator is None else {"generator": generator}
        sample = scheduler.step(eps, t, sample, return_dict=False, **extra)[0]
    return sample


def schedule_of(scheduler: Any) -> DiscreteSchedule:
    """The DiscreteSchedule of a diffusers scheduler's own (float32) training alphas."""
    return DiscreteSchedule.from_alphas_cumprod(scheduler.alphas_cumprod.double())


def compare(ours: Tensor, theirs: Tensor) -> float:
    """Max abs difference relative to the result's scale."""
    return float((ours - theirs).abs().max() / theirs.abs().max())


def with_nearest_timesteps(scheduler: Any) -> Any:
    """The diffusers scheduler, feeding the UNet ComfyUI's (and our KSampler's) timesteps.

    diffusers interpolates a fractional timestep for each sigma (DPM-Solver then rounds it in
    t); ComfyUI and our KSampler use the training step nearest in log-sigma. The scheduler's
    sigmas and steps are untouched: only the timestep values the pipeline hands the UNet change.
    """
    set_timesteps = scheduler.set_timesteps

    def set_nearest_timesteps(*args: Any, **kwargs: Any) -> None:
        set_timesteps(*args, **kwargs)
        schedule = DiscreteSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
        nearest = schedule.sigma_to_nearest_t(scheduler.sigmas[:-1].float())
        scheduler.timesteps = nearest.to(scheduler.timesteps.dtype)

    scheduler.set_timesteps = set_nearest_timesteps
    return scheduler
