"""Test oracles for samplers: an exact analytic denoiser and a driver for diffusers' schedulers.

If every element of the data is drawn from N(mu, s^2), the noisy x = x0 + sigma * noise has the
closed-form posterior mean D(x, sigma) = (x s^2 + mu sigma^2) / (s^2 + sigma^2): a perfect
denoiser with no network, so any difference between two samplers is the samplers' own.

diffusers' schedulers expect the model's epsilon (or v) for their own `sample`, which lives in
sigma space (x) for the k-diffusion ports and in variance-preserving space (x / sqrt(1+sigma^2))
for DPM-Solver/UniPC/DDIM/LCM; `run_diffusers` converts between them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
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


def ode_solution_between(
    data: GaussianData, x_start: Tensor, sigma_start: float, sigma_end: float
) -> Tensor:
    """Where the probability-flow ODE from (x_start, sigma_start) is at sigma_end.

    For Gaussian data each element's offset from mu scales with the marginal std
    sqrt(s^2 + sigma^2), which is the closed form of the ODE (sigma_end = 0: ode_solution).
    """
    ratio = ((data.s**2 + sigma_end**2) / (data.s**2 + sigma_start**2)) ** 0.5
    return data.mu + (x_start - data.mu) * ratio


def dpmpp_2s_ancestral_in_vp_space(
    data: GaussianData,
    x: Tensor,
    sigmas: Tensor,
    generator: torch.Generator,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(2S) ancestral written from the paper in variance-preserving variables.

    Lu et al. 2022 (DPM-Solver++, Algorithm 1 with r = 1/2) works on x_vp = alpha x0 +
    sigma_vp eps with alpha = 1 / sqrt(1 + sigma^2), sigma_vp = sigma alpha and
    lambda = log(alpha / sigma_vp); the ancestral split is DDPM's posterior variance in the
    k-diffusion parameterisation. Float64 throughout; unit noise is drawn from `generator`.
    """

    def vp(sigma: float) -> tuple[float, float, float]:
        alpha = 1 / math.sqrt(1 + sigma**2)
        return alpha, sigma * alpha, -math.log(sigma)

    x_vp = (x.double() / math.sqrt(1 + float(sigmas[0]) ** 2)).clone()
    mu = data.mu.double()

    def x0_of(x_vp: Tensor, sigma: float) -> Tensor:
        x_sigma = x_vp * math.sqrt(1 + sigma**2)
        return (x_sigma * data.s**2 + mu * sigma**2) / (data.s**2 + sigma**2)

    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        x0 = x0_of(x_vp, sigma)
        up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
        down = math.sqrt(sigma_next**2 - up**2)
        if down == 0:
            x_vp = x0  # sigma_vp = 0, alpha = 1: the clean estimate itself
            continue
        _, sigma_vp, lam = vp(sigma)
        alpha_d, sigma_vp_d, lam_d = vp(down)
        h = lam_d - lam
        alpha_m, sigma_vp_m, _ = vp(math.exp(-(lam + h / 2)))
        u = (sigma_vp_m / sigma_vp) * x_vp - alpha_m * math.expm1(-h / 2) * x0
        x0_mid = x0_of(u, math.exp(-(lam + h / 2)))
        x_vp = (sigma_vp_d / sigma_vp) * x_vp - alpha_d * math.expm1(-h) * x0_mid
        # Back at sigma_down in sigma space, add the ancestral noise, return to VP at sigma_next.
        x_sigma = x_vp / alpha_d + up * torch.randn(x.shape, generator=generator).double()
        x_vp = x_sigma / math.sqrt(1 + sigma_next**2)
    return x_vp.float()


def deis_vp_process() -> tuple[float, float]:
    """(beta_d, beta_min) of DEIS's linear-beta VP process, solved from its two end conditions.

    log(1 + sigma(tau)^2) = beta_d tau^2 / 2 + beta_min tau must give sigma = 0.002 at
    tau = 1e-3 and sigma = 80 at tau = 1 (EDM's range, as ComfyUI's DEIS fixes it).
    """
    system = np.array([[1e-3**2 / 2, 1e-3], [0.5, 1.0]])
    beta_d, beta_min = np.linalg.solve(system, np.log1p(np.array([0.002**2, 80.0**2])))
    return float(beta_d), float(beta_min)


def deis_exact_coefficients(sigmas: Tensor, i: int, order: int) -> list[float]:
    """DEIS's weights for the step sigmas[i] -> sigmas[i + 1], integrated exactly in sigma.

    The weight of the derivative at step i - j is the integral over sigma of the Lagrange basis
    polynomial (in VP time tau) of node j: substituting sigma for tau turns ComfyUI's
    integral of dsigma/dtau * L_j(tau) into this one, done here by 64-point Gauss-Legendre with
    tau(sigma) found as the root of the process's quadratic.
    """
    beta_d, beta_min = deis_vp_process()

    def tau(sigma: float) -> float:
        roots = np.roots([beta_d / 2, beta_min, -math.log1p(sigma * sigma)])
        return float(roots.real.max())

    start, end = float(sigmas[i]), float(sigmas[i + 1])
    points, weights = np.polynomial.legendre.leggauss(64)
    grid = [(end - start) / 2 * p + (start + end) / 2 for p in points]
    taus = np.array([tau(s) for s in grid])
    nodes = [tau(float(sigmas[i - k])) for k in range(order)]
    coefficients = []
    for j in range(order):
        basis = np.ones_like(taus)
        for k in range(order):
            if k != j:
                basis *= (taus - nodes[k]) / (nodes[j] - nodes[k])
        coefficients.append(float((weights * basis).sum() * (end - start) / 2))
    return coefficients


# Sigmas from ComfyUI 0.8.0 itself (comfy.samplers.calculate_sigmas on SD 1.5's discrete
# schedule, 7 steps), recorded as float32 values: the schedules must reproduce them exactly.
COMFYUI_SIGMAS_7_STEPS: dict[str, tuple[float, ...]] = {
    "linear_quadratic": (
        14.614641189575195, 14.492852210998535, 14.371064186096191, 14.249275207519531,
        13.267354011535645, 10.565167427062988, 6.142716407775879, 0.0,
    ),
    "kl_optimal": (
        14.614632606506348, 3.0807013511657715, 1.5970659255981445, 0.9615880846977234,
        0.572914183139801, 0.2818378806114197, 0.029167158529162407, 0.0,
    ),
}  # fmt: skip
