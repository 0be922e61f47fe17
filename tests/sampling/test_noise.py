"""Noise sources: seeded, where ComfyUI seeds them, and (Brownian) consistent along one path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
import torch

from latentloom.sampling.noise import BrownianTreeNoise, GaussianNoise, StepNoise, step_noise_seed

SHAPE = (2, 4, 16, 16)


def test_gaussian_noise_continues_the_generator_stream() -> None:
    like = torch.zeros(SHAPE)
    generator = torch.Generator("cpu").manual_seed(5)
    reference = torch.Generator("cpu").manual_seed(5)
    initial = torch.randn(SHAPE, generator=generator)  # e.g. the initial latent noise
    noise = GaussianNoise(like, generator)
    sigma = torch.tensor(1.0)
    first, second = noise(sigma, sigma / 2), noise(sigma / 2, sigma / 4)
    assert torch.equal(initial, torch.randn(SHAPE, generator=reference))
    assert torch.equal(first, torch.randn(SHAPE, generator=reference))
    assert torch.equal(second, torch.randn(SHAPE, generator=reference))


def test_step_noise_is_a_fresh_cpu_generator_seeded_with_seed_plus_one() -> None:
    like = torch.zeros(SHAPE)
    sigma = torch.tensor(1.0)
    draws = [StepNoise(like, 41)(sigma, sigma / 2) for _ in range(2)]
    noise = StepNoise(like, 41)
    first, second = noise(sigma, sigma / 2), noise(sigma / 2, sigma / 4)
    reference = torch.manual_seed(42)  # ComfyUI's manual_seed(seed + 1) on the CPU
    assert torch.equal(first, torch.randn(SHAPE, generator=reference))
    assert torch.equal(second, torch.randn(SHAPE, generator=reference))
    # Each sampler run starts the stream afresh, and it is not the initial noise's stream.
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[0], first)
    assert not torch.equal(first, torch.randn(SHAPE, generator=torch.Generator().manual_seed(41)))


def test_step_noise_seed_shifts_only_on_the_cpu() -> None:
    assert step_noise_seed(41, torch.device("cpu")) == 42
    assert step_noise_seed(2**64 - 1, torch.device("cpu")) == 0
    assert step_noise_seed(41, torch.device("cuda", 0)) == 41
    assert step_noise_seed(41, torch.device("mps")) == 41


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_step_noise_draws_on_the_cuda_device_from_the_seed() -> None:
    like = torch.zeros(SHAPE, device="cuda")
    drawn = StepNoise(like, 41)(torch.tensor(1.0), torch.tensor(0.5))
    reference = torch.Generator("cuda").manual_seed(41)
    assert drawn.device.type == "cuda"
    assert torch.equal(drawn, torch.randn(SHAPE, generator=reference, device="cuda"))


def test_gaussian_noise_takes_the_latents_dtype() -> None:
    noise = GaussianNoise.from_seed(torch.zeros(SHAPE, dtype=torch.float64), 0)
    drawn = noise(torch.tensor(1.0), torch.tensor(0.5))
    assert drawn.dtype == torch.float64 and drawn.shape == SHAPE
    # Drawn in float32 and converted, so the values do not depend on the latent dtype.
    expected = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)).double()
    assert torch.equal(drawn, expected)


def test_gaussian_noise_refuses_a_device_generator() -> None:
    cuda_generator = cast(torch.Generator, SimpleNamespace(device=torch.device("cuda", 0)))
    with pytest.raises(ValueError) as caught:
        GaussianNoise(torch.zeros(SHAPE), cuda_generator)
    assert str(caught.value) == (
        "GaussianNoise needs a CPU generator so seeds transfer between devices, got one on "
        "cuda:0; use torch.Generator('cpu')"
    )


SIGMAS = torch.tensor([14.6, 6.0, 2.0, 0.5, 0.03, 0.0])


def brownian(seed: int) -> BrownianTreeNoise:
    return BrownianTreeNoise(torch.zeros(SHAPE), SIGMAS, seed)


def test_brownian_noise_is_seeded() -> None:
    a, b = torch.tensor(6.0), torch.tensor(2.0)
    assert torch.equal(brownian(1)(a, b), brownian(1)(a, b))
    assert not torch.equal(brownian(1)(a, b), brownian(2)(a, b))


def test_brownian_increments_add_up_along_one_path() -> None:
    # W(a) - W(c) = (W(a) - W(b)) + (W(b) - W(c)): sub-steps see one consistent path, which is
    # what lets dpmpp_sde split a step at its midpoint.
    noise = brownian(3)
    a, b, c = torch.tensor(6.0), torch.tensor(3.3), torch.tensor(0.5)
    whole = noise(a, c) * (a - c).sqrt()
    parts = noise(a, b) * (a - b).sqrt() + noise(b, c) * (b - c).sqrt()
    torch.testing.assert_close(whole, parts, rtol=0, atol=1e-5)


def test_brownian_noise_has_unit_variance() -> None:
    drawn = brownian(4)(torch.tensor(6.0), torch.tensor(2.0))
    assert abs(float(drawn.mean())) < 0.1
    assert abs(float(drawn.std()) - 1) < 0.07  # 2048 samples: standard error ~0.016


def test_brownian_queries_a_hair_outside_the_interval_are_clamped_silently() -> None:
    # exp(-(-log sigma)) can land an ulp below sigma_min; torchsde would warn (an error here).
    below_min = torch.tensor(0.03) * (1 - 1e-6)
    drawn = brownian(5)(torch.tensor(0.5), below_min)
    assert drawn.shape == SHAPE and bool(drawn.isfinite().all())
