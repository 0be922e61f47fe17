"""DiscreteSchedule: sigma <-> timestep maps against diffusers' own implementation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from tests.sampling.oracles import IGNORE_DIFFUSERS_NUMPY_WARNINGS, SD_SCHEDULER_CONFIG

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS


@pytest.fixture(scope="module")
def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


def test_alphas_match_diffusers_scaled_linear_betas() -> None:
    # diffusers computes the same betas in float32, so agreement is to float32 precision.
    scheduler: Any = EulerDiscreteScheduler(**SD_SCHEDULER_CONFIG)
    theirs = scheduler.alphas_cumprod.double()
    ours = alphas_cumprod()
    assert ours.dtype == torch.float64 and ours.shape == (1000,)
    torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=0)


def test_sd_sigma_range(schedule: DiscreteSchedule) -> None:
    # The well-known SD 1.x/2.x/XL range (ComfyUI prints the same values).
    assert schedule.sigma_min == pytest.approx(0.029167, abs=1e-6)
    assert schedule.sigma_max == pytest.approx(14.614642, abs=1e-6)


def test_sigma_to_t_matches_diffusers(schedule: DiscreteSchedule) -> None:
    scheduler: Any = EulerDiscreteScheduler(**SD_SCHEDULER_CONFIG)
    log_sigmas = schedule.log_sigmas.numpy()
    # In range, at both ends, between training steps, and outside the range (clamped).
    probe = np.concatenate(
        [np.geomspace(0.01, 20.0, 97), [schedule.sigma_min, schedule.sigma_max, 1.0]]
    )
    theirs = scheduler._sigma_to_t(probe, log_sigmas)
    ours = schedule.sigma_to_t(torch.from_numpy(probe))
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-9)


def test_t_to_sigma_inverts_sigma_to_t(schedule: DiscreteSchedule) -> None:
    t = torch.linspace(0, 999, 1234, dtype=torch.float64)
    torch.testing.assert_close(schedule.sigma_to_t(schedule.t_to_sigma(t)), t, rtol=0, atol=1e-9)
    # At integer timesteps it is the training sigma (up to exp(log(sigma)) rounding).
    integers = torch.arange(1000, dtype=torch.float64)
    torch.testing.assert_close(schedule.t_to_sigma(integers), schedule.sigmas, rtol=1e-15, atol=0)


def test_rejects_a_non_vector_schedule() -> None:
    with pytest.raises(ValueError, match=r"1-D tensor of at least 2 entries, got shape \(2, 500\)"):
        DiscreteSchedule.from_alphas_cumprod(torch.ones(2, 500))


def test_nearest_timestep_is_the_closest_training_step_in_log_sigma() -> None:
    schedule = DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())
    sigmas = schedule.sigmas.float()
    # On the grid: each training sigma maps to its own step.
    assert schedule.sigma_to_nearest_t(sigmas[[0, 17, 500, 999]]).tolist() == [0, 17, 500, 999]
    # Between steps 400 and 401, on each side of the log-space midpoint.
    low, high = schedule.log_sigmas[400], schedule.log_sigmas[401]
    near_low = float((low + 0.3 * (high - low)).exp())
    near_high = float((low + 0.7 * (high - low)).exp())
    assert schedule.sigma_to_nearest_t(near_low).item() == 400
    assert schedule.sigma_to_nearest_t(near_high).item() == 401
    # Beyond the ends: clamped to the first and last step.
    assert schedule.sigma_to_nearest_t(1e-4).item() == 0
    assert schedule.sigma_to_nearest_t(1e4).item() == 999
