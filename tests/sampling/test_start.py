"""The KSampler's start: seed noise over the batch, scaled as ComfyUI scales it."""

from __future__ import annotations

import math

import torch

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.schedules import partial_sigmas, sigmas_karras
from latentloom.sampling.start import initial_noise, is_max_denoise, noise_scale, start_latent

SHAPE = (2, 4, 8, 8)


def schedule() -> DiscreteSchedule:
    return DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())


def test_initial_noise_is_one_cpu_randn_over_the_full_shape() -> None:
    expected = torch.randn(SHAPE, generator=torch.manual_seed(123), device="cpu")
    assert torch.equal(initial_noise(123, SHAPE), expected)
    assert initial_noise(123, SHAPE).dtype == torch.float32


def test_max_denoise_when_the_first_sigma_is_sigma_max_within_1e_5() -> None:
    sigma_max = schedule().sigma_max
    assert is_max_denoise(sigma_max, sigma_max)
    assert is_max_denoise(sigma_max * (1 - 0.9e-5), sigma_max)
    assert not is_max_denoise(sigma_max * (1 - 1.1e-5), sigma_max)
    assert is_max_denoise(sigma_max * 2, sigma_max)


def test_scale_is_sqrt_one_plus_sigma_squared_at_full_denoise_else_sigma() -> None:
    sigma_max = schedule().sigma_max
    full = sigmas_karras(schedule(), 10)
    assert torch.equal(noise_scale(full[0], sigma_max), torch.sqrt(1.0 + full[0] ** 2.0))
    # SD's sigma_max = 14.61: the two conventions differ by 0.23 %.
    assert math.isclose(
        float(noise_scale(full[0], sigma_max)) / float(full[0]), 1.00234, rel_tol=1e-5
    )
    partial = partial_sigmas(sigmas_karras, schedule(), 10, 0.5)
    assert torch.equal(noise_scale(partial[0], sigma_max), partial[0])


def test_denoise_just_below_one_still_starts_from_full_noise() -> None:
    # int(20 / 0.99) = 20: the whole schedule runs, so ComfyUI's rule (sigmas, not denoise)
    # scales by sqrt(1 + sigma^2).
    sigmas = partial_sigmas(sigmas_karras, schedule(), 20, 0.99)
    assert is_max_denoise(float(sigmas[0]), schedule().sigma_max)


def test_start_latent_adds_the_latent_to_the_scaled_noise() -> None:
    latent = torch.full(SHAPE, 0.5)
    noise = initial_noise(5, SHAPE)
    sigmas = sigmas_karras(schedule(), 4)
    start = start_latent(latent, noise, sigmas, schedule().sigma_max)
    assert torch.equal(start, noise * torch.sqrt(1.0 + sigmas[0] ** 2.0) + latent)
