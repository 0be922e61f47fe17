"""dpm_fast and dpm_adaptive against the exact ODE solution, and their contracts with ComfyUI.

Neither has a diffusers twin (diffusers' single-step DPM-Solver takes its stages from the
schedule and orders them 1, 2, 3, ...), so the oracle is the closed-form solution of the
probability-flow ODE for Gaussian data (tests/sampling/oracles.py) at the sigma where both
stop: the schedule's last nonzero one. dpm_fast must converge at third order in its number of
evaluations; dpm_adaptive must meet its tolerance whatever the schedule's length. Both read
only the schedule's ends, which is checked exactly.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.samplers_dpm_adaptive import ACCEPT_SAFETY, step_factor
from latentloom.sampling.samplers_dpm_solver import fast_orders
from latentloom.sampling.schedules import sigmas_exponential, sigmas_karras
from tests.sampling.oracles import GaussianData, compare, ode_solution_between, start_noise


def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


class Counting:
    """The analytic denoiser, recording the sigma of every call."""

    def __init__(self, data: GaussianData) -> None:
        self.data = data
        self.sigmas: list[float] = []

    def __call__(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        self.sigmas.append(float(sigma))
        return self.data.denoise(x, sigma)


def test_fast_orders_follow_k_diffusion() -> None:
    # Third-order steps, the remainder as one step of order nfe % 3, or 2 then 1.
    assert [fast_orders(n) for n in range(1, 8)] == [
        [1],
        [2],
        [2, 1],
        [3, 1],
        [3, 2],
        [3, 2, 1],
        [3, 3, 1],
    ]
    assert all(sum(fast_orders(n)) == n for n in range(1, 60))


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_dpm_fast_spends_one_call_per_schedule_step(steps: int) -> None:
    sigmas = sigmas_karras(schedule(), steps)
    denoiser = Counting(GaussianData.make())
    progress: list[tuple[int, int]] = []
    SAMPLERS["dpm_fast"](
        denoiser,
        start_noise() * sigmas[0],
        sigmas,
        callback=lambda i, n, x, d: progress.append((i, n)),
    )
    assert len(denoiser.sigmas) == steps
    assert progress == [(i, steps) for i in range(steps)]
    # The first call is at the first sigma; none is at 0 or below the last nonzero sigma.
    assert denoiser.sigmas[0] == pytest.approx(float(sigmas[0]), rel=1e-6)
    assert min(denoiser.sigmas) >= float(sigmas[-2]) * (1 - 1e-6)


def test_dpm_fast_converges_at_third_order_to_the_last_nonzero_sigma() -> None:
    data = GaussianData.make()
    errors = []
    for steps in (20, 40):
        sigmas = sigmas_karras(schedule(), steps)
        x = start_noise() * sigmas[0]
        exact = ode_solution_between(data, x, float(sigmas[0]), float(sigmas[-2]))
        errors.append(compare(SAMPLERS["dpm_fast"](data.denoise, x, sigmas), exact))
    # Measured 8.3e-4 -> 1.3e-4: six to eight times smaller for twice the evaluations.
    assert errors[0] < 2e-3
    assert errors[1] < errors[0] / 6


def test_dpm_fast_stops_at_the_last_nonzero_sigma_with_its_noise_left() -> None:
    # Sharp data (s = 0.05), compared as offsets from the mean: the 0.029 of noise left at the
    # last nonzero sigma is then 16% of the offset, far more than dpm_fast's own error.
    data, sigmas = GaussianData.make(s=0.05), sigmas_karras(schedule(), 40)
    x = start_noise() * sigmas[0]
    result = SAMPLERS["dpm_fast"](data.denoise, x, sigmas) - data.mu
    at_last_sigma = ode_solution_between(data, x, float(sigmas[0]), float(sigmas[-2])) - data.mu
    at_zero = data.ode_solution(x, float(sigmas[0])) - data.mu
    assert compare(at_last_sigma, at_zero) > 0.15
    # Measured 0.022 against 0.13.
    assert compare(result, at_last_sigma) < compare(result, at_zero) / 4


@pytest.mark.parametrize("name", ["dpm_fast", "dpm_adaptive"])
def test_only_the_schedules_ends_and_length_matter(name: str) -> None:
    data = GaussianData.make()
    karras = sigmas_karras(schedule(), 9)
    # Any other schedule with the same first and last nonzero sigma and the same length.
    other = sigmas_exponential(schedule(), 9)
    other[0], other[-2] = karras[0], karras[-2]
    assert not torch.equal(other, karras)
    x = start_noise() * karras[0]
    assert torch.equal(
        SAMPLERS[name](data.denoise, x, karras), SAMPLERS[name](data.denoise, x, other)
    )


@pytest.mark.parametrize("steps", [2, 10, 40])
def test_dpm_adaptive_meets_its_tolerance_whatever_the_step_count(steps: int) -> None:
    data = GaussianData.make()
    sigmas = sigmas_karras(schedule(), steps)
    x = start_noise() * sigmas[0]
    denoiser = Counting(data)
    result = SAMPLERS["dpm_adaptive"](denoiser, x, sigmas)
    exact = ode_solution_between(data, x, float(sigmas[0]), float(sigmas[-2]))
    # rtol 0.05 per step; measured 9.3e-3 of the sample's scale, in 30 calls, for any length.
    assert compare(result, exact) < 2e-2
    assert len(denoiser.sigmas) % 3 == 0 and len(denoiser.sigmas) >= 6
    # It never evaluates below the last nonzero sigma (it stops there, as dpm_fast does).
    assert min(denoiser.sigmas) >= float(sigmas[-2]) * (1 - 1e-6)


def test_dpm_adaptive_progress_is_the_share_of_log_sigma_done() -> None:
    data, sigmas = GaussianData.make(), sigmas_karras(schedule(), 10)
    denoiser = Counting(data)
    progress: list[tuple[int, int]] = []
    SAMPLERS["dpm_adaptive"](
        denoiser,
        start_noise() * sigmas[0],
        sigmas,
        callback=lambda i, n, x, d: progress.append((i, n)),
    )
    assert len(progress) == len(denoiser.sigmas)  # one report per model call
    assert {n for _, n in progress} == {10}
    span = math.log(float(sigmas[0]) / float(sigmas[-2]))
    for (i, _), call in zip(progress[0::3], denoiser.sigmas[0::3], strict=True):
        # Each attempt starts at an accepted sigma: its share of the way sets the index.
        done = math.log(float(sigmas[0]) / call) / span
        assert i == min(9, math.floor(10 * done + 1e-6))
    assert [i for i, _ in progress] == sorted(i for i, _ in progress)


def test_dpm_adaptive_keeps_a_step_while_the_controller_allows_it() -> None:
    # Step factor 1 + atan(error^(-1/3) - 1): 1 at error 1; accepted from 0.81 down, i.e. up
    # to error (1 + tan(0.81 - 1))^-3.
    assert step_factor(1.0) == pytest.approx(1.0, abs=1e-7)
    threshold = (1 + math.tan(ACCEPT_SAFETY - 1)) ** -3
    assert threshold == pytest.approx(1.898, abs=1e-3)
    assert step_factor(threshold * 0.999) >= ACCEPT_SAFETY > step_factor(threshold * 1.001)
    assert step_factor(0.0) < 1 + math.pi / 2


@pytest.mark.parametrize("name", ["dpm_fast", "dpm_adaptive"])
def test_flipped_sigmas_integrate_towards_noise(name: str) -> None:
    data = GaussianData.make()
    sigmas = sigmas_karras(schedule(), 12)[:-1].flip(0)  # ascending, no 0
    x = data.mu + start_noise() * float(sigmas[0])
    exact = ode_solution_between(data, x, float(sigmas[0]), float(sigmas[-1]))
    assert compare(SAMPLERS[name](data.denoise, x, sigmas), exact) < 2e-2


def test_dpm_adaptive_stops_on_a_non_finite_model_output() -> None:
    # k-diffusion's controller never accepts a NaN error and would retry forever.
    data, sigmas = GaussianData.make(), sigmas_karras(schedule(), 4)

    def broken(x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        return torch.full_like(x, math.nan) if float(sigma) < 5 else data.denoise(x, sigma)

    with pytest.raises(
        ValueError, match=r"dpm_adaptive: the step's error estimate is nan at sigma"
    ):
        SAMPLERS["dpm_adaptive"](broken, start_noise() * sigmas[0], sigmas)
