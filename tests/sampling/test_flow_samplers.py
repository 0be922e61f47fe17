"""Every sampler on a rectified-flow model: x = (1 - s) x0 + s n, sigma from 1 down to 0.

Two exact toys stand in for the network:

* a constant prediction (D = x0 everywhere): the flow ODE dx/ds = (x - x0) / s carries any
  start to x0, so every deterministic sampler must land on x0;
* Gaussian data x0 ~ N(mu, d^2): the posterior mean is closed-form and the ODE from pure
  noise n at s = 1 lands on mu + d n, which the deterministic samplers approach at their
  order as steps grow.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.sampling.custom import SamplerChoice
from latentloom.sampling.model_sampling import sd3_sampling
from latentloom.sampling.noise import GaussianNoise
from latentloom.sampling.samplers import (
    FLOW_REFUSED,
    FLOW_SAMPLERS,
    SAMPLERS,
    SamplerNotForFlowError,
    get_sampler,
)
from latentloom.sampling.samplers_flow import flow_ancestral_step
from latentloom.sampling.samplers_multistep import UNIPC_FINAL_SIGMA
from latentloom.sampling.schedules import compute_sigmas

SHAPE = (1, 4, 32, 32)
DETERMINISTIC = (
    "euler",
    "heun",
    "dpm_2",
    "lms",
    "dpmpp_2m",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
    "ipndm",
    "deis",
    "dpm_fast",
    "dpm_adaptive",
)
STOCHASTIC = (
    "euler_ancestral",
    "dpm_2_ancestral",
    "dpmpp_2s_ancestral",
    "dpmpp_2m_sde",
    "dpmpp_sde",
    "dpmpp_3m_sde",
    "lcm",
)
MU, SPREAD = 0.5, 0.5


def test_the_lists_cover_every_sampler() -> None:
    assert set(DETERMINISTIC) | set(STOCHASTIC) | set(FLOW_REFUSED) == set(SAMPLERS)


class GaussianFlowData:
    """x0 ~ N(MU, SPREAD^2) per element under x = (1 - s) x0 + s n: the exact denoiser."""

    def __call__(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        s = torch.as_tensor(sigma, dtype=x.dtype)
        a, var = 1 - s, SPREAD**2
        return MU + a * var / (a**2 * var + s**2) * (x - a * MU)


def _run(name: str, denoise: Any, steps: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    sampling = sd3_sampling()
    sigmas = compute_sigmas("simple", sampling, steps)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))
    x = sampling.noise_scaling(sigmas[0], noise, torch.zeros(SHAPE))
    choice = SamplerChoice(name)
    result = choice.function_for("flow")(
        denoise, x, sigmas, noise=choice.step_noise(x, sigmas, seed + 1)
    )
    return result, noise


# Samplers that stop short of sigma 0, as ComfyUI's do: UniPC at 0.001, DPM-fast / adaptive
# at the schedule's last nonzero sigma.
def _stop_sigma(name: str, sigmas: Tensor) -> float:
    if name.startswith("uni_pc"):
        return UNIPC_FINAL_SIGMA
    if name in ("dpm_fast", "dpm_adaptive"):
        return float(sigmas[-2])
    return 0.0


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_samplers_land_on_a_constant_prediction(name: str) -> None:
    target = torch.linspace(-1, 1, 4).view(1, 4, 1, 1).expand(SHAPE)

    def constant(x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        return target

    result, noise = _run(name, constant, steps=6)
    # The exact path from x = n at s = 1 is x0 + s (n - x0): x0 itself at s = 0.
    stop = _stop_sigma(name, compute_sigmas("simple", sd3_sampling(), 6))
    assert torch.allclose(result, target + stop * (noise - target), atol=1e-4)


def _ode_error(name: str, steps: int) -> float:
    result, noise = _run(name, GaussianFlowData(), steps=steps)
    assert torch.isfinite(result).all()
    # The ODE keeps (x - a mu) / sqrt(a^2 d^2 + s^2) = n along the way (a = 1 - s): at s = 0
    # it lands on mu + d n.
    s = _stop_sigma(name, compute_sigmas("simple", sd3_sampling(), steps))
    exact = (1 - s) * MU + ((1 - s) ** 2 * SPREAD**2 + s**2) ** 0.5 * noise
    return float((result - exact).abs().max())


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_samplers_converge_to_the_flow_ode_solution(name: str) -> None:
    # Measured: Euler 0.19 / 0.098 / 0.050 at 30 / 60 / 120 steps (first order), Heun 0.043 /
    # 0.011 / 0.003 (second order); none is above 0.05 at 120 steps. Below 5e-3 the float32
    # floor and the samplers' stopping sigma decide, not the step count.
    coarse, fine = _ode_error(name, 30), _ode_error(name, 120)
    assert fine < 0.05
    assert fine < max(coarse / 2, 5e-3)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_samplers_run_on_a_flow_model(name: str) -> None:
    result, _ = _run(name, GaussianFlowData(), steps=20)
    assert torch.isfinite(result).all()
    # The data's mean survives every sampler (the noise averages out over 4096 elements).
    assert float(result.mean()) == pytest.approx(MU, abs=0.03)


def test_flow_ancestral_step_keeps_the_noise_level() -> None:
    sigma, sigma_next = torch.tensor(0.8), torch.tensor(0.5)
    sigma_down, ratio, renoise = flow_ancestral_step(sigma, sigma_next, eta=1.0)
    assert float(sigma_down) == pytest.approx(0.5**2 / 0.8)
    assert float(ratio) == pytest.approx(0.5 / (1 - 0.3125))
    # x0's weight becomes 1 - s_next and the noise variance s_next^2.
    assert float(ratio * (1 - sigma_down)) == pytest.approx(0.5)
    assert float((ratio * sigma_down) ** 2 + renoise**2) == pytest.approx(0.25)


def test_a_sampler_without_a_flow_form_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every sampler has a flow form today; the refusal is for one added without it.
    monkeypatch.setitem(FLOW_REFUSED, "heun", "euler")
    with pytest.raises(SamplerNotForFlowError) as caught:
        get_sampler("heun", "flow")
    assert str(caught.value) == (
        "sampler 'heun' has no rectified-flow form and cannot sample an SD 3.x or FLUX model; "
        "use euler"
    )
    assert get_sampler("heun") is SAMPLERS["heun"]  # SD models keep it


def test_stochastic_samplers_use_their_flow_forms() -> None:
    for name in STOCHASTIC:
        assert get_sampler(name, "flow") is FLOW_SAMPLERS[name]
        assert get_sampler(name) is SAMPLERS[name]


@pytest.mark.parametrize(
    "name",
    [
        "euler_ancestral",
        "dpm_2_ancestral",
        "dpmpp_2s_ancestral",
        "dpmpp_2m_sde",
        "dpmpp_sde",
        "dpmpp_3m_sde",
    ],
)
def test_flow_forms_without_noise_solve_the_flow_ode(name: str) -> None:
    # eta = 0 turns each into its deterministic solver: a wrong alpha (or an SD-style step)
    # would converge somewhere else than mu + d n.
    def error(steps: int) -> float:
        sampling = sd3_sampling()
        sigmas = compute_sigmas("simple", sampling, steps)
        noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
        unused = GaussianNoise.from_seed(noise, 1)  # stochastic samplers insist on a source
        sampler: Any = FLOW_SAMPLERS[name]
        result = sampler(GaussianFlowData(), noise.clone(), sigmas, noise=unused, eta=0.0)
        return float((result - (MU + SPREAD * noise)).abs().max())

    # The start at s = 1 (taken as 0.9999 where lambda is needed) keeps 2M SDE's error near
    # 7e-3 at 120 steps (1e-4 at 30): the floor here is 1e-2.
    coarse, fine = error(30), error(120)
    assert fine < 0.05
    assert fine < max(coarse / 2, 1e-2)
