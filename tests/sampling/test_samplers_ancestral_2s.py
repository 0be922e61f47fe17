"""dpmpp_2s_ancestral against DPM-Solver++(2S) written out in variance-preserving variables.

diffusers has no ancestral DPM-Solver++(2S) (its single-step solver takes its intermediate
points from the schedule, not at half the step), so the oracle is the paper's update in VP
variables, float64 (tests/sampling/oracles.py), fed the same unit noise draws. With eta = 0
the sampler is the ODE solver DPM-Solver++(2S), checked against the exact ODE solution.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.noise import GaussianNoise
from latentloom.sampling.samplers import BROWNIAN_NOISE_SAMPLERS, SAMPLERS
from latentloom.sampling.samplers_ancestral_2s import sample_dpmpp_2s_ancestral
from latentloom.sampling.schedules import sigmas_karras, sigmas_normal
from tests.sampling.oracles import (
    GaussianData,
    compare,
    dpmpp_2s_ancestral_in_vp_space,
    ode_solution_between,
    start_noise,
)

NOISE_SEED = 7


def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


def test_registered_with_per_step_noise() -> None:
    assert SAMPLERS["dpmpp_2s_ancestral"] is sample_dpmpp_2s_ancestral
    assert "dpmpp_2s_ancestral" not in BROWNIAN_NOISE_SAMPLERS  # StepNoise, as ComfyUI


def test_matches_the_vp_space_formula_with_the_same_noise() -> None:
    data = GaussianData.make()
    for sigmas in (sigmas_karras(schedule(), 10), sigmas_normal(schedule(), 7)):
        x = start_noise() * sigmas[0]
        ours = sample_dpmpp_2s_ancestral(
            data.denoise, x, sigmas, noise=GaussianNoise.from_seed(x, NOISE_SEED)
        )
        draws = torch.Generator().manual_seed(NOISE_SEED)
        theirs = dpmpp_2s_ancestral_in_vp_space(data, x, sigmas, draws)
        # Measured 2e-7 (float32 against float64).
        assert compare(ours, theirs) <= 2e-6


def test_two_model_calls_per_step_and_an_euler_step_to_zero() -> None:
    data, sigmas = GaussianData.make(), sigmas_karras(schedule(), 5)
    x = start_noise() * sigmas[0]
    seen: list[float] = []
    last: list[Tensor] = []

    def counting(x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        seen.append(float(sigma))
        return data.denoise(x, sigma)

    result = sample_dpmpp_2s_ancestral(
        counting,
        x,
        sigmas,
        noise=GaussianNoise.from_seed(x, 0),
        callback=lambda i, n, x, denoised: last.append(denoised),
    )
    # 4 two-stage steps, then the step to 0 with one call (sigma_down = 0: Euler).
    assert len(seen) == 2 * 4 + 1
    assert seen[0::2] == [float(s) for s in sigmas[:-1]]
    torch.testing.assert_close(result, last[-1], rtol=0, atol=1e-6)


def test_eta_zero_is_dpm_solver_pp_2s_on_the_ode() -> None:
    # Compared where the schedule's last nonzero sigma is, so the first-order jump to 0 (the
    # same for every sampler) does not hide the solver's own order.
    data = GaussianData.make()
    errors = []
    for steps in (10, 20):
        sigmas = sigmas_karras(schedule(), steps)[:-1]
        x = start_noise() * sigmas[0]
        ours = sample_dpmpp_2s_ancestral(data.denoise, x, sigmas, noise=None, eta=0.0)
        exact = ode_solution_between(data, x, float(sigmas[0]), float(sigmas[-1]))
        errors.append(compare(ours, exact))
    # Second order: twice the steps, a quarter of the error (measured 1.07e-2 -> 2.6e-3).
    assert errors[0] < 1.5e-2
    assert errors[1] < errors[0] / 3.5


def test_refuses_to_run_without_noise_unless_eta_is_zero() -> None:
    data, sigmas = GaussianData.make(), sigmas_karras(schedule(), 3)
    with pytest.raises(
        ValueError, match="sampler 'dpmpp_2s_ancestral' is stochastic and needs a noise source"
    ):
        sample_dpmpp_2s_ancestral(data.denoise, start_noise() * sigmas[0], sigmas)


def test_reaches_the_data_distribution() -> None:
    shape = (4, 4, 32, 32)
    generator = torch.Generator().manual_seed(0)
    data = GaussianData(mu=torch.randn(shape, generator=generator), s=0.5)
    sigmas = sigmas_karras(schedule(), 30)
    x = torch.randn(shape, generator=generator) * sigmas[0]
    result = sample_dpmpp_2s_ancestral(data.denoise, x, sigmas, noise=GaussianNoise(x, generator))
    z = (result - data.mu) / data.s
    assert abs(float(z.mean())) < 0.02
    assert abs(float(z.std()) - 1) < 0.03
