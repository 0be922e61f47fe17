"""Sigma schedules: their shape, and agreement with diffusers where they coincide by design.

Where a schedule has a diffusers twin, the DiscreteSchedule is built from the diffusers
scheduler's own float32 training alphas, so the comparison isolates the schedule logic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.beta_distribution import beta_ppf
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.errors import UnknownNameError
from latentloom.sampling.schedules import (
    SCHEDULES,
    compute_sigmas,
    partial_sigmas,
    schedule_function,
    sigmas_beta,
    sigmas_ddim_uniform,
    sigmas_karras,
)
from tests.sampling.oracles import (
    IGNORE_DIFFUSERS_NUMPY_WARNINGS,
    SD_SCHEDULER_CONFIG,
    schedule_of,
)

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS

# Our sigmas are computed in float64 from float32 alphas, diffusers' in float32: 2-3 ulp.
ULPS = 3e-7


@pytest.fixture(scope="module")
def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


def diffusers_euler(steps: int, **options: Any) -> Any:
    scheduler: Any = EulerDiscreteScheduler(**SD_SCHEDULER_CONFIG, **options)
    scheduler.set_timesteps(steps)
    return scheduler


def test_registry_names() -> None:
    assert list(SCHEDULES) == [
        "normal",
        "karras",
        "exponential",
        "sgm_uniform",
        "simple",
        "ddim_uniform",
        "beta",
        "linear_quadratic",
        "kl_optimal",
        "align_your_steps",
    ]


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("steps", [1, 2, 7, 30, 150])
def test_shape_and_order(schedule: DiscreteSchedule, name: str, steps: int) -> None:
    sigmas = schedule_function(name, "sd15")(schedule, steps)
    assert sigmas.dtype == torch.float32
    if name == "beta" and steps >= 139:
        # Rounding makes quantiles collide from 139 steps on; repeats are dropped.
        assert len(sigmas) < steps + 1
    elif name == "ddim_uniform":
        # Every (1000 // steps)-th timestep from 1 below 1000: 8 for 7 steps, 31 for 30.
        assert len(sigmas) == len(range(1, 1000, 1000 // steps)) + 1 >= steps + 1
    else:
        assert sigmas.shape == (steps + 1,)
    assert sigmas[-1] == 0
    assert bool((sigmas[:-1] > 0).all())
    assert bool((sigmas[1:] < sigmas[:-1]).all()), "strictly decreasing"
    assert float(sigmas[0]) <= schedule.sigma_max * (1 + 1e-6)
    assert float(sigmas[-2]) >= schedule.sigma_min * (1 - 1e-6)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("karras", {"use_karras_sigmas": True}),
        ("exponential", {"use_exponential_sigmas": True}),
    ],
)
@pytest.mark.parametrize("steps", [2, 10, 30])
def test_equals_diffusers_option(name: str, options: dict[str, Any], steps: int) -> None:
    theirs = diffusers_euler(steps, **options)
    ours = SCHEDULES[name](schedule_of(theirs), steps)
    torch.testing.assert_close(ours, theirs.sigmas, rtol=ULPS, atol=0)


@pytest.mark.parametrize("steps", [2, 10, 30])
def test_ddim_uniform_ends_like_diffusers_leading(steps: int) -> None:
    # diffusers takes the first `steps` timesteps 1, 1 + 1000 // steps, ...; ComfyUI (and we)
    # keep going while below 1000, so 30 steps gain one at the noisy end (t = 991).
    theirs = diffusers_euler(steps, timestep_spacing="leading", steps_offset=1)
    ours = SCHEDULES["ddim_uniform"](schedule_of(theirs), steps)
    torch.testing.assert_close(ours[-(steps + 1) :], theirs.sigmas, rtol=ULPS, atol=0)
    assert len(ours) - len(theirs.sigmas) == (1 if steps == 30 else 0)


def test_ddim_uniform_is_comfyuis_timestep_walk(schedule: DiscreteSchedule) -> None:
    # From the definition: timesteps 1, 34, 67, ..., 991 (stride 1000 // 30 = 33), reversed.
    timesteps = [1 + 33 * k for k in range(31)]
    assert timesteps[-1] == 991
    expected = torch.cat([schedule.sigmas[timesteps[::-1]], torch.zeros(1, dtype=torch.float64)])
    assert torch.equal(sigmas_ddim_uniform(schedule, 30), expected.float())


@pytest.mark.parametrize("steps", [2, 10, 30, 50])
def test_normal_is_diffusers_linspace_with_log_interpolation(steps: int) -> None:
    theirs = diffusers_euler(steps, timestep_spacing="linspace")
    ours = sigmas_of("normal", theirs, steps)
    # Same timesteps; diffusers interpolates sigma linearly between training steps, we (like
    # ComfyUI) log-linearly: at most ~1e-4 apart, and equal where timesteps are integers.
    torch.testing.assert_close(ours, theirs.sigmas, rtol=2e-4, atol=0)
    torch.testing.assert_close(ours[[0, -2]], theirs.sigmas[[0, -2]], rtol=ULPS, atol=0)


@pytest.mark.parametrize(("name", "max_timestep_gap"), [("simple", 1.0), ("sgm_uniform", 1.5)])
@pytest.mark.parametrize("steps", [3, 10, 30, 100])
def test_close_to_diffusers_trailing(name: str, max_timestep_gap: float, steps: int) -> None:
    theirs = diffusers_euler(steps, timestep_spacing="trailing")
    schedule = schedule_of(theirs)
    ours = SCHEDULES[name](schedule, steps)
    # "simple" truncates i*T/n where "trailing" rounds it (<= 1 step apart); "sgm_uniform"
    # spaces by (T-1)/n instead of T/n, drifting by up to one more half step.
    gaps = schedule.sigma_to_t(ours[:-1]) - theirs.timesteps.double()
    assert float(gaps.abs().max()) <= max_timestep_gap + 1e-4
    torch.testing.assert_close(ours[0], theirs.sigmas[0], rtol=ULPS, atol=0)


def sigmas_of(name: str, scheduler: Any, steps: int) -> torch.Tensor:
    return SCHEDULES[name](schedule_of(scheduler), steps)


def comfyui_beta_reference(schedule: DiscreteSchedule, steps: int) -> torch.Tensor:
    """ComfyUI's beta_scheduler with scipy, written out from its documented behaviour."""
    scipy_stats = pytest.importorskip("scipy.stats")
    quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
    timesteps = np.rint(scipy_stats.beta.ppf(quantiles, 0.6, 0.6) * 999)
    kept = [int(t) for i, t in enumerate(timesteps) if i == 0 or t != timesteps[i - 1]]
    return torch.cat([schedule.sigmas[kept], torch.zeros(1, dtype=torch.float64)]).float()


@pytest.mark.parametrize("steps", [1, 5, 20, 60, 300])
def test_beta_matches_scipy_reference(schedule: DiscreteSchedule, steps: int) -> None:
    assert torch.equal(sigmas_beta(schedule, steps), comfyui_beta_reference(schedule, steps))


def test_beta_ppf_matches_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for a, b in [(0.6, 0.6), (2.0, 5.0), (0.5, 0.5)]:
        for q in np.linspace(0, 1, 41):
            assert beta_ppf(float(q), a, b) == pytest.approx(
                scipy_stats.beta.ppf(q, a, b), abs=1e-12
            )


def test_partial_sigmas_keep_the_tail_of_a_longer_schedule(schedule: DiscreteSchedule) -> None:
    partial = partial_sigmas(sigmas_karras, schedule, 10, 0.5)
    assert torch.equal(partial, sigmas_karras(schedule, 20)[-11:])
    assert torch.equal(
        partial_sigmas(sigmas_karras, schedule, 10, 1.0), sigmas_karras(schedule, 10)
    )
    # int(7 / 0.3) = 23 steps, the last 7 of them.
    assert torch.equal(
        partial_sigmas(sigmas_karras, schedule, 7, 0.3), sigmas_karras(schedule, 23)[-8:]
    )
    assert partial_sigmas(sigmas_karras, schedule, 10, 0.0).numel() == 0


def test_discarding_the_penultimate_sigma(schedule: DiscreteSchedule) -> None:
    # dpm_2, dpm_2_ancestral, uni_pc: steps + 1 sigmas computed, the second-to-last dropped.
    longer = sigmas_karras(schedule, 9)
    expected = torch.cat([longer[:-2], longer[-1:]])
    assert torch.equal(
        partial_sigmas(sigmas_karras, schedule, 8, 1.0, discard_penultimate=True), expected
    )
    assert len(expected) == 9
    # With denoise < 1 the longer schedule is int(steps / denoise) + 1 steps, then its tail.
    longer = sigmas_karras(schedule, 17)
    assert torch.equal(
        partial_sigmas(sigmas_karras, schedule, 8, 0.5, discard_penultimate=True),
        torch.cat([longer[:-2], longer[-1:]])[-9:],
    )


def test_denoise_above_0_9999_is_a_full_schedule(schedule: DiscreteSchedule) -> None:
    # A full ddim_uniform schedule is used whole (31 steps for 30), a partial one is cut.
    assert len(partial_sigmas(sigmas_ddim_uniform, schedule, 30, 0.99995)) == 32
    assert len(partial_sigmas(sigmas_ddim_uniform, schedule, 30, 0.9999)) == 31


def test_partial_sigmas_reject_bad_denoise(schedule: DiscreteSchedule) -> None:
    with pytest.raises(ValueError, match=r"denoise must be between 0 and 1, got 1\.5"):
        partial_sigmas(sigmas_karras, schedule, 10, 1.5)
    with pytest.raises(ValueError, match="a schedule needs at least 1 step, got 0"):
        compute_sigmas("karras", schedule, 0)


def test_unknown_scheduler_lists_valid_names(schedule: DiscreteSchedule) -> None:
    with pytest.raises(UnknownNameError) as caught:
        compute_sigmas("Karras", schedule, 10)
    assert str(caught.value) == (
        "unknown scheduler 'Karras'; expected one of: normal, karras, exponential, sgm_uniform, "
        "simple, ddim_uniform, beta, linear_quadratic, kl_optimal, align_your_steps. Pick one "
        "of those names (they are case-sensitive)."
    )
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULES))
def test_no_schedule_repeats_a_sigma_past_the_training_steps(scheduler: str) -> None:
    """A zero-length step divides by zero in several samplers (NaN latents)."""
    schedule = DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())
    for steps in (999, 1000, 1001, 2500):
        sigmas = schedule_function(scheduler, "sdxl")(schedule, steps)
        assert bool((sigmas[:-1] > sigmas[1:]).all()), f"{scheduler} at {steps} steps repeats"


def test_simple_past_the_training_steps_visits_each_training_sigma_once() -> None:
    schedule = DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())
    sigmas = SCHEDULES["simple"](schedule, 2500)
    assert sigmas.numel() == 1000 + 1
    assert torch.equal(sigmas[:-1], schedule.sigmas.flip(0).to(torch.float32))
