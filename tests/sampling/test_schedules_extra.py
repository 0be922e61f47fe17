"""linear_quadratic and kl_optimal: ComfyUI's own sigmas, and the formulas' defining properties.

The oracle is twofold: the sigmas ComfyUI 0.8.0 computes for SD 1.5's schedule (recorded in
oracles.py), which ours must reproduce to the bit, and the properties each formula is
defined by, checked in float64 (Mochi's linear-then-quadratic shape; arctan-linear spacing).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.schedules import SCHEDULES
from latentloom.sampling.schedules_extra import sigmas_kl_optimal, sigmas_linear_quadratic
from tests.sampling.oracles import COMFYUI_SIGMAS_7_STEPS


@pytest.fixture(scope="module")
def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


@pytest.mark.parametrize("name", list(COMFYUI_SIGMAS_7_STEPS))
def test_equals_comfyuis_sigmas(schedule: DiscreteSchedule, name: str) -> None:
    expected = torch.tensor(COMFYUI_SIGMAS_7_STEPS[name], dtype=torch.float32)
    assert torch.equal(SCHEDULES[name](schedule, 7), expected)


@pytest.mark.parametrize("steps", [3, 4, 8, 25, 100])
def test_linear_quadratic_is_linear_then_a_smooth_quadratic(
    schedule: DiscreteSchedule, steps: int
) -> None:
    sigma_max = float(torch.tensor(schedule.sigma_max, dtype=torch.float32))
    fractions = 1 - sigmas_linear_quadratic(schedule, steps).double().numpy() / sigma_max
    half = steps // 2
    assert len(fractions) == steps + 1
    assert fractions[0] == 0 and fractions[-1] == 1  # from sigma_max down to exactly 0
    # Linear up to 0.025 at step n // 2: equal increments of 0.025 / (n // 2)...
    np.testing.assert_allclose(fractions[: half + 1], np.arange(half + 1) * 0.025 / half, atol=3e-7)
    # ...then a quadratic through (n // 2, 0.025), with the same slope there, up to (n, 1).
    i = np.arange(half, steps + 1)
    a, b, c = np.polyfit(i, fractions[half:], 2)
    np.testing.assert_allclose(np.polyval([a, b, c], i), fractions[half:], atol=3e-6)
    assert 2 * a * half + b == pytest.approx(0.025 / half, rel=1e-3)


def test_linear_quadratic_single_step_is_sigma_max_then_zero(schedule: DiscreteSchedule) -> None:
    assert SCHEDULES["linear_quadratic"](schedule, 1).tolist() == [
        float(torch.tensor(schedule.sigma_max, dtype=torch.float32)),
        0.0,
    ]


@pytest.mark.parametrize("steps", [2, 5, 30, 150])
def test_kl_optimal_spaces_arctan_sigma_evenly(schedule: DiscreteSchedule, steps: int) -> None:
    sigmas = sigmas_kl_optimal(schedule, steps)
    assert sigmas[-1] == 0 and len(sigmas) == steps + 1
    angles = np.arctan(sigmas[:-1].double().numpy())
    expected = np.linspace(math.atan(schedule.sigma_max), math.atan(schedule.sigma_min), steps)
    # float32 math, as ComfyUI's: within a few float32 ulps of the float64 formula.
    np.testing.assert_allclose(angles, expected, rtol=2e-6, atol=0)
    assert float(sigmas[-2]) == pytest.approx(schedule.sigma_min, rel=1e-6)


def test_kl_optimal_single_step_is_sigma_max_then_zero(schedule: DiscreteSchedule) -> None:
    # ComfyUI divides by n - 1 = 0 here and gets NaN; we start at sigma_max.
    sigmas = SCHEDULES["kl_optimal"](schedule, 1)
    assert sigmas[1] == 0
    assert float(sigmas[0]) == pytest.approx(schedule.sigma_max, rel=1e-6)
