"""Model sampling pinned against its definitions: discrete SD, SD3 and FLUX rectified flow.

The flow values are closed forms (sigma(t) = shift t / (1 + (shift - 1) t); FLUX's mu linear
in tokens), so each expectation below is computed by hand, not by the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.model_sampling import (
    DiscreteSampling,
    FlowSampling,
    flux_mu,
    flux_sampling,
    sd3_sampling,
    shifted_sigma,
)
from latentloom.sampling.schedules import compute_sigmas


def test_sd3_shift_3_maps_t_half_to_three_quarters() -> None:
    assert float(shifted_sigma(3.0, torch.tensor(0.5, dtype=torch.float64))) == 0.75
    sampling = sd3_sampling()
    # Table entry t = 500/1000 is 0.5 exactly in float32.
    assert float(sampling.sigmas[499]) == 0.75
    assert sampling.sigma_max == 1.0
    assert sampling.sigma_min == pytest.approx(3 * 0.001 / (1 + 2 * 0.001), rel=1e-6)
    assert sampling.sigmas.dtype == torch.float32 and sampling.sigmas.numel() == 1000


def test_sd3_timestep_is_sigma_times_1000_and_flux_passes_sigma() -> None:
    sigma = torch.tensor(0.25)
    assert float(sd3_sampling().timestep(sigma)) == 250.0
    assert float(flux_sampling(1.15).timestep(sigma)) == 0.25


@pytest.mark.parametrize(
    ("width", "height", "mu"),
    [(256, 256, 0.5), (1024, 1024, 1.15), (512, 512, 0.5 + 0.65 * (1024 - 256) / 3840)],
)
def test_flux_mu_is_linear_in_image_tokens(width: int, height: int, mu: float) -> None:
    # 256 px -> 16x16 = 256 tokens (base shift); 1024 px -> 4096 tokens (max shift).
    assert flux_mu(width, height) == pytest.approx(mu, abs=1e-12)


def test_flux_sampling_table_and_shift() -> None:
    sampling = flux_sampling(1.15)
    assert sampling.sigmas.numel() == 10000
    assert sampling.shift == pytest.approx(math.exp(1.15))
    # diffusers' time_shift(mu, 1, t) = e^mu / (e^mu + 1/t - 1) at t = 0.5: e^mu / (e^mu + 1).
    expected = math.exp(1.15) / (math.exp(1.15) + 1)
    assert float(sampling.sigmas[4999]) == pytest.approx(expected, rel=1e-6)


def test_flow_noise_scaling_and_inverse() -> None:
    sampling = sd3_sampling()
    noise, latent = torch.full((1, 2, 2, 2), 2.0), torch.full((1, 2, 2, 2), 10.0)
    x = sampling.noise_scaling(torch.tensor(0.25), noise, latent)
    assert torch.equal(x, torch.full_like(x, 0.25 * 2.0 + 0.75 * 10.0))
    # A leftover-noise latent re-enters without noise unchanged: (1 - s) * (x / (1 - s)) = x.
    handed_on = sampling.inverse_noise_scaling(torch.tensor(0.25), x)
    assert torch.allclose(handed_on, x / 0.75)
    again = sampling.noise_scaling(torch.tensor(0.25), torch.zeros_like(x), handed_on)
    assert torch.allclose(again, x, rtol=1e-6)
    assert sampling.inverse_noise_scaling(torch.tensor(0.0), x) is x


def test_flow_denoised_and_scale_input() -> None:
    sampling = FlowSampling(shift=3.0)
    x, v = torch.full((1, 1, 1, 1), 1.0), torch.full((1, 1, 1, 1), 4.0)
    assert float(sampling.denoised(x, torch.tensor(0.5), v)) == -1.0  # x - sigma * v
    assert sampling.scale_input(x, torch.tensor(0.5)) is x


def test_flow_percent_to_sigma() -> None:
    sampling = sd3_sampling()
    assert sampling.percent_to_sigma(0.0) == math.inf
    assert sampling.percent_to_sigma(1.0) == 0.0
    assert sampling.percent_to_sigma(0.5) == 0.75  # shifted 1 - 0.5


def test_discrete_sampling_matches_the_sd_formulas() -> None:
    table = alphas_cumprod()
    eps, v = DiscreteSampling("epsilon", table), DiscreteSampling("v_prediction", table)
    schedule = DiscreteSchedule.from_alphas_cumprod(table)
    assert eps.sigma_max == schedule.sigma_max and eps.sigma_min == schedule.sigma_min
    sigma = torch.tensor(2.0)
    x, out = torch.full((1, 1, 1, 1), 3.0), torch.full((1, 1, 1, 1), 0.5)
    assert float(eps.denoised(x, sigma, out)) == 3.0 - 2.0 * 0.5
    assert float(v.denoised(x, sigma, out)) == pytest.approx(3.0 / 5 - 0.5 * 2 / math.sqrt(5))
    assert float(eps.scale_input(x, sigma)) == pytest.approx(3.0 / math.sqrt(5))
    assert float(eps.timestep(torch.tensor(schedule.sigma_max))) == 999.0
    noise, latent = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    start = eps.noise_scaling(torch.tensor(schedule.sigma_max), noise, latent)
    assert float(start) == pytest.approx(math.sqrt(1 + schedule.sigma_max**2))
    plain = eps.noise_scaling(torch.tensor(schedule.sigma_max), noise, latent, max_denoise=False)
    assert float(plain) == pytest.approx(schedule.sigma_max)
    assert eps.inverse_noise_scaling(sigma, x) is x


def test_discrete_sampling_refuses_flow_as_prediction() -> None:
    with pytest.raises(ValueError, match="'epsilon' or 'v_prediction', got 'flow'"):
        DiscreteSampling("flow", alphas_cumprod())  # type: ignore[arg-type]


def test_simple_scheduler_on_sd3_picks_from_the_table() -> None:
    sigmas = compute_sigmas("simple", sd3_sampling(), 4)
    # Every 250th of the 1000 entries from the top: t = 1, 0.75, 0.5, 0.25, shifted by 3.
    expected = [shifted_sigma(3.0, torch.tensor(t)) for t in (1.0, 0.75, 0.5, 0.25)]
    assert sigmas.tolist() == pytest.approx([float(e) for e in expected] + [0.0], abs=1e-7)
    assert sigmas.tolist()[:3] == [1.0, 0.8999999761581421, 0.75]


def test_normal_scheduler_on_sd3_spaces_network_timesteps_as_comfyui() -> None:
    # ComfyUI's "normal" on a flow model: network timesteps evenly from t(sigma_max) = 1000 to
    # t(sigma_min) = 1000 sigma_min, each shifted once more by sigma(t / 1000).
    sampling = sd3_sampling()
    sigma_min = 3 * 0.001 / (1 + 2 * 0.001)
    last = 3 * sigma_min / (1 + 2 * sigma_min)
    middle_t = (1.0 + sigma_min) / 2
    middle = 3 * middle_t / (1 + 2 * middle_t)
    sigmas = compute_sigmas("normal", sampling, 3)
    assert sigmas.tolist() == pytest.approx([1.0, middle, last, 0.0], rel=1e-6)


def test_every_scheduler_gives_a_descending_flow_schedule() -> None:
    for sampling in (sd3_sampling(), flux_sampling(1.15)):
        for name in ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform",
                     "beta", "linear_quadratic", "kl_optimal"):  # fmt: skip
            sigmas = compute_sigmas(name, sampling, 8)
            assert float(sigmas[0]) <= 1.0 and float(sigmas[-1]) == 0.0, name
            assert bool((sigmas[1:] < sigmas[:-1]).all()), name
