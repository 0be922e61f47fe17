"""Samplers against diffusers' schedulers, on an exact analytic denoiser.

For each sampler, the diffusers scheduler named in REFERENCE.md runs its own loop on the
analytic Gaussian-data model (tests/sampling/oracles.py); our sampler gets the scheduler's own
sigma array, the same starting point and the same noise (a generator seeded alike, or the same
Brownian tree seed), and must land on the same sample. Measured gaps are <= 5e-7 of the
sample's scale (float32 rounding in a different order); the tolerance is 2e-6.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LCMScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)
from torch import Tensor

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.noise import BrownianTreeNoise, GaussianNoise, NoiseSource
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.samplers_dpmpp import sample_dpmpp_2m_sde
from latentloom.sampling.samplers_euler import sample_dpm_2_ancestral, sample_euler_ancestral
from latentloom.sampling.samplers_multistep import UNIPC_FINAL_SIGMA, sample_uni_pc
from latentloom.sampling.schedules import sigmas_karras
from tests.sampling.oracles import (
    IGNORE_DIFFUSERS_NUMPY_WARNINGS,
    SD_SCHEDULER_CONFIG,
    GaussianData,
    SigmaOf,
    compare,
    run_diffusers,
    sigma_from_alphas,
    start_noise,
    step_sigma,
)

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS
TOLERANCE = 2e-6
NOISE_SEED = 7
KARRAS = {**SD_SCHEDULER_CONFIG, "use_karras_sigmas": True}


def second_order_sigma(interpolated_offset: int) -> SigmaOf:
    """KDPM2's sigma: the step's start, or (second stage) its interpolated midpoint."""

    def sigma_of(scheduler: Any, timestep: Tensor) -> float:
        index = scheduler.step_index
        if scheduler.state_in_first_order:
            return float(scheduler.sigmas[index])
        return float(scheduler.sigmas_interpol[index - interpolated_offset])

    return sigma_of


def sde_sigma(scheduler: Any, timestep: Tensor) -> float:
    if scheduler.state_in_first_order:
        return float(scheduler.sigmas[scheduler.step_index])
    return float(scheduler.mid_point_sigma)


def timestep_sigma(scheduler: Any, timestep: Tensor) -> float:
    return sigma_from_alphas(scheduler.alphas_cumprod, timestep)


@dataclass(frozen=True)
class Oracle:
    sampler: str
    make: Callable[[], Any]
    sigma_of: SigmaOf = step_sigma
    variance_preserving: bool = False  # diffusers' sample is x / sqrt(1 + sigma^2)
    noise: Literal["none", "gaussian", "brownian"] = "none"
    steps: int = 10
    options: dict[str, Any] = field(default_factory=dict)


ORACLES = [
    Oracle("euler", lambda: EulerDiscreteScheduler(**KARRAS)),
    Oracle(
        "euler_ancestral",
        lambda: EulerAncestralDiscreteScheduler(**SD_SCHEDULER_CONFIG),
        noise="gaussian",
    ),
    Oracle("heun", lambda: HeunDiscreteScheduler(**KARRAS)),
    Oracle("dpm_2", lambda: KDPM2DiscreteScheduler(**KARRAS), second_order_sigma(0)),
    Oracle(
        "dpm_2_ancestral",
        lambda: KDPM2AncestralDiscreteScheduler(**KARRAS),
        second_order_sigma(1),
        noise="gaussian",
    ),
    Oracle("lms", lambda: LMSDiscreteScheduler(**KARRAS)),
    Oracle("dpmpp_2m", lambda: DPMSolverMultistepScheduler(**KARRAS), variance_preserving=True),
    Oracle(
        "dpmpp_2m_sde",
        lambda: DPMSolverMultistepScheduler(**KARRAS, algorithm_type="sde-dpmsolver++"),
        variance_preserving=True,
        noise="gaussian",
    ),
    Oracle(
        "dpmpp_sde",
        lambda: DPMSolverSDEScheduler(**KARRAS, noise_sampler_seed=NOISE_SEED),
        sde_sigma,
        noise="brownian",
    ),
    # DDIM with eta = 0 in sigma space is Euler; set_alpha_to_one makes its last step reach 0.
    Oracle(
        "ddim",
        lambda: DDIMScheduler(
            **SD_SCHEDULER_CONFIG, set_alpha_to_one=True, steps_offset=1, clip_sample=False
        ),
        timestep_sigma,
        variance_preserving=True,
    ),
    # LCMScheduler also applies the consistency-model boundary scalings, which belong to an
    # LCM-distilled model's parameterisation, not to the sampler; a huge timestep_scaling makes
    # them c_skip ~ 0, c_out ~ 1, leaving the plain denoise-then-renoise loop.
    Oracle(
        "lcm",
        lambda: LCMScheduler(**SD_SCHEDULER_CONFIG, timestep_scaling=1e6, clip_sample=False),
        timestep_sigma,
        variance_preserving=True,
        noise="gaussian",
        steps=4,
    ),
]


def our_sigmas(oracle: Oracle, scheduler: Any) -> Tensor:
    if oracle.sigma_of is timestep_sigma:
        sigmas = [timestep_sigma(scheduler, t) for t in scheduler.timesteps]
        return torch.tensor([*sigmas, 0.0])
    # Second-order schedulers store each intermediate sigma twice; keep one of each.
    return torch.unique_consecutive(scheduler.sigmas)


def our_noise(kind: str, x: Tensor, sigmas: Tensor) -> NoiseSource | None:
    if kind == "gaussian":
        return GaussianNoise.from_seed(x, NOISE_SEED)
    if kind == "brownian":
        return BrownianTreeNoise(x, sigmas, NOISE_SEED)
    return None


def run_oracle(oracle: Oracle, data: GaussianData, noise: Tensor) -> Tensor:
    scheduler = oracle.make()
    scheduler.set_timesteps(oracle.steps)
    generator = torch.Generator().manual_seed(NOISE_SEED) if oracle.noise == "gaussian" else None
    with warnings.catch_warnings():
        # diffusers' Brownian tree is queried an ulp outside its interval and torchsde warns
        # (then clamps); ours clamps first, which is why our own run must stay silent.
        warnings.filterwarnings("ignore", message="Should have t")
        return run_diffusers(
            scheduler,
            data,
            noise,
            oracle.sigma_of,
            variance_preserving=oracle.variance_preserving,
            generator=generator,
        )


def test_registry_names() -> None:
    assert list(SAMPLERS) == [
        "euler",
        "euler_ancestral",
        "heun",
        "dpm_2",
        "dpm_2_ancestral",
        "lms",
        "dpmpp_2m",
        "dpmpp_2m_sde",
        "dpmpp_sde",
        "ddim",
        "uni_pc",
        "uni_pc_bh2",
        "lcm",
        "dpmpp_2s_ancestral",
        "dpmpp_3m_sde",
        "ipndm",
        "deis",
        "dpm_fast",
        "dpm_adaptive",
    ]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_sampler_names_its_source_in_one_line(name: str) -> None:
    doc = SAMPLERS[name].__doc__ or ""
    first_line = doc.strip().splitlines()[0]
    assert any(year in first_line for year in ("2020", "2022", "2023", "k-diffusion"))


@pytest.mark.parametrize("oracle", ORACLES, ids=[o.sampler for o in ORACLES])
def test_matches_diffusers_scheduler(oracle: Oracle) -> None:
    data, noise = GaussianData.make(), start_noise()
    theirs = run_oracle(oracle, data, noise)
    scheduler = oracle.make()
    scheduler.set_timesteps(oracle.steps)
    sigmas = our_sigmas(oracle, scheduler)
    assert sigmas[-1] == 0 and len(sigmas) == oracle.steps + 1
    # The same starting state: diffusers' VP sample is x / sqrt(1 + sigma^2).
    scale = (1 + sigmas[0] ** 2) ** 0.5 if oracle.variance_preserving else sigmas[0]
    x = noise * scale
    ours = SAMPLERS[oracle.sampler](
        data.denoise, x, sigmas, noise=our_noise(oracle.noise, x, sigmas), **oracle.options
    )
    assert compare(ours, theirs) <= TOLERANCE


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_uni_pc_matches_diffusers(order: int, variant: str) -> None:
    # diffusers 0.42's UniPC returns NaN when its last sigma is 0 (inf * 0 in the predictor's
    # empty residual term), so compare on a schedule ending at sigma_min; our final step to 0
    # is checked separately below.
    scheduler: Any = UniPCMultistepScheduler(
        **KARRAS, solver_type=variant, solver_order=order, final_sigmas_type="sigma_min"
    )
    scheduler.set_timesteps(10)
    data, noise = GaussianData.make(), start_noise()
    theirs = run_diffusers(scheduler, data, noise, variance_preserving=True)
    sigmas = scheduler.sigmas
    assert sigmas[-1] > 0
    x = noise * (1 + sigmas[0] ** 2) ** 0.5
    ours = sample_uni_pc(data.denoise, x, sigmas, order=order, variant=variant)  # type: ignore[arg-type]
    assert compare(ours / (1 + sigmas[-1] ** 2) ** 0.5, theirs) <= TOLERANCE
    if variant == "bh2" and order == 3:
        assert torch.equal(SAMPLERS["uni_pc_bh2"](data.denoise, x, sigmas), ours)


@pytest.mark.parametrize("name", ["uni_pc", "uni_pc_bh2"])
def test_uni_pc_stops_at_sigma_0_001_as_comfyui_does(name: str) -> None:
    # ComfyUI's UniPC replaces a final sigma of 0 by 0.001: the last (first-order) step is the
    # exact exponential-integrator step to 0.001 from the last prediction, leaving that noise.
    data, sigmas = GaussianData.make(), karras_sigmas(8)
    seen: list[tuple[Tensor, Tensor]] = []
    x = start_noise() * sigmas[0]
    result = SAMPLERS[name](
        data.denoise, x, sigmas, callback=lambda i, n, x, d: seen.append((x, d))
    )
    last_x, last_denoised = seen[-1]
    ratio = torch.tensor(UNIPC_FINAL_SIGMA, dtype=torch.float32) / sigmas[-2]
    expected = ratio * last_x - torch.expm1(ratio.double().log()).float() * last_denoised
    torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-6)
    assert not torch.equal(result, last_denoised)
    assert sigmas[-1] == 0  # the caller's schedule is left alone


def karras_sigmas(steps: int) -> Tensor:
    return sigmas_karras(DiscreteSchedule.from_alphas_cumprod(alphas_cumprod()), steps)


# Error against the exact ODE solution after 30 Karras steps (measured: Euler 2.8e-2,
# second-order methods 0.9e-3 to 2.2e-3), with headroom.
ODE_ERROR_AT_30_STEPS = {
    "euler": 4e-2,
    "ddim": 4e-2,
    "heun": 4e-3,
    "dpm_2": 4e-3,
    "lms": 4e-3,
    "dpmpp_2m": 4e-3,
    "uni_pc": 4e-3,
    "uni_pc_bh2": 4e-3,
}


@pytest.mark.parametrize("name", list(ODE_ERROR_AT_30_STEPS))
def test_deterministic_samplers_solve_the_ode(name: str) -> None:
    data, sigmas = GaussianData.make(), karras_sigmas(30)
    x = start_noise() * sigmas[0]
    exact = data.ode_solution(x, float(sigmas[0]))
    assert compare(SAMPLERS[name](data.denoise, x, sigmas), exact) <= ODE_ERROR_AT_30_STEPS[name]
    # ...and converge: three times the steps, a clearly smaller error.
    coarse = compare(SAMPLERS[name](data.denoise, x, karras_sigmas(10)), exact)
    assert compare(SAMPLERS[name](data.denoise, x, sigmas), exact) < coarse / 2


@pytest.mark.parametrize(
    ("ancestral", "deterministic"),
    [
        (sample_euler_ancestral, "euler"),
        (sample_dpm_2_ancestral, "dpm_2"),
        (sample_dpmpp_2m_sde, "dpmpp_2m"),
    ],
)
def test_eta_zero_is_the_ode_sampler(ancestral: Callable[..., Tensor], deterministic: str) -> None:
    data, sigmas = GaussianData.make(), karras_sigmas(12)
    x = start_noise() * sigmas[0]
    noise = GaussianNoise.from_seed(x, 0)
    stochastic = ancestral(data.denoise, x, sigmas, noise=noise, eta=0.0)
    torch.testing.assert_close(
        stochastic, SAMPLERS[deterministic](data.denoise, x, sigmas), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("name", ["dpm_2_ancestral", "dpmpp_2m_sde", "dpmpp_sde"])
def test_stochastic_samplers_reach_the_data_distribution(name: str) -> None:
    # With the exact denoiser, a good SDE sampler's output is distributed like the data:
    # (x - mu) / s ~ N(0, 1) per element. 16k elements: the std's standard error is ~0.006.
    shape = (4, 4, 32, 32)
    generator = torch.Generator().manual_seed(0)
    data = GaussianData(mu=torch.randn(shape, generator=generator), s=0.5)
    sigmas = karras_sigmas(30)
    x = torch.randn(shape, generator=generator) * sigmas[0]
    noise = BrownianTreeNoise(x, sigmas, 3) if name == "dpmpp_sde" else GaussianNoise(x, generator)
    z = (SAMPLERS[name](data.denoise, x, sigmas, noise=noise) - data.mu) / data.s
    assert abs(float(z.mean())) < 0.02
    assert abs(float(z.std()) - 1) < 0.03


@pytest.mark.parametrize(
    "name", ["euler_ancestral", "dpm_2_ancestral", "dpmpp_2m_sde", "dpmpp_sde", "lcm"]
)
def test_stochastic_samplers_refuse_to_run_without_noise(name: str) -> None:
    data, sigmas = GaussianData.make(), karras_sigmas(3)
    with pytest.raises(
        ValueError, match=f"sampler '{name}' is stochastic and needs a noise source"
    ):
        SAMPLERS[name](data.denoise, start_noise() * sigmas[0], sigmas)


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_callback_sees_every_step_and_can_cancel(name: str) -> None:
    data, sigmas = GaussianData.make(), karras_sigmas(6)
    x = start_noise() * sigmas[0]
    noise = (
        BrownianTreeNoise(x, sigmas, 0) if name == "dpmpp_sde" else GaussianNoise.from_seed(x, 0)
    )
    steps: list[tuple[int, int]] = []

    def record(i: int, total: int, x: Tensor, denoised: Tensor) -> None:
        assert x.shape == denoised.shape
        steps.append((i, total))

    SAMPLERS[name](data.denoise, x, sigmas, noise=noise, callback=record)
    if name == "dpm_adaptive":
        # Its step count depends on the data: 3 calls per attempted step, the index is the
        # share of the log-sigma range done (see samplers_dpm_adaptive.py).
        indices = [i for i, _ in steps]
        assert {total for _, total in steps} == {6} and len(steps) % 3 == 0
        assert indices[0] == 0 and indices == sorted(indices) and indices[-1] <= 5
    else:
        assert steps == [(i, 6) for i in range(6)]

    def cancel_at_step_2(i: int, total: int, x: Tensor, denoised: Tensor) -> None:
        if i >= 2:  # dpm_adaptive's progress may skip an index
            raise Cancelled

    with pytest.raises(Cancelled):
        SAMPLERS[name](data.denoise, x, sigmas, noise=noise, callback=cancel_at_step_2)
