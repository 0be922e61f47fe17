"""sample(): seeding, names, partial denoise, cancellation and weight patches."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.models.handles import DiffusionModel, WeightPatch
from latentloom.sampling.denoiser import GuidedDenoiser
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.errors import UnknownNameError
from latentloom.sampling.noise import BrownianTreeNoise, GaussianNoise
from latentloom.sampling.run import sample
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.samplers_euler import sample_euler_ancestral
from latentloom.sampling.schedules import sigmas_ddim_uniform, sigmas_karras
from tests.sampling.tiny_models import LATENT_SHAPE, conditioning, latent_noise, tiny_model

STEPS = 4


@pytest.fixture(scope="module")
def model() -> DiffusionModel:
    return tiny_model()


def run(model: DiffusionModel, seed: int, sampler: str = "euler", **kw: Any) -> Tensor:
    options: dict[str, Any] = {"steps": STEPS, "cfg": 5.0, "scheduler": "karras"} | kw
    latent = options.pop("latent", torch.zeros(LATENT_SHAPE))
    return sample(
        model, conditioning(1), conditioning(2), latent, seed=seed, sampler=sampler, **options
    )


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_sde"])
def test_same_seed_same_result_other_seed_differs(model: DiffusionModel, sampler: str) -> None:
    first = run(model, 11, sampler)
    assert first.dtype == torch.float32 and first.device.type == "cpu"
    assert torch.equal(first, run(model, 11, sampler))
    assert not torch.allclose(first, run(model, 12, sampler))


def full_noise_scale(sigma: Tensor) -> Tensor:
    """ComfyUI's full-denoise start factor, computed from its definition in float32."""
    return torch.sqrt(1.0 + sigma.to(torch.float32) ** 2.0)


def karras(model: DiffusionModel, steps: int = STEPS) -> Tensor:
    return sigmas_karras(DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), steps)


def test_full_denoise_starts_from_noise_times_sqrt_one_plus_sigma_max_squared(
    model: DiffusionModel,
) -> None:
    latent = torch.full(LATENT_SHAPE, 0.25)
    starts: list[Tensor] = []
    run(model, 11, latent=latent, callback=lambda i, n, x, d: starts.append(x) if i == 0 else None)
    sigma_max = karras(model)[0]
    assert torch.equal(starts[0], latent_noise(11) * full_noise_scale(sigma_max) + latent)
    # Not the sigma-scaled start k-diffusion and diffusers' "linspace" spacing use.
    assert not torch.allclose(starts[0], latent_noise(11) * sigma_max + latent, rtol=1e-4)


def test_one_noise_draw_covers_the_whole_batch(model: DiffusionModel) -> None:
    shape = (2, *LATENT_SHAPE[1:])
    starts: list[Tensor] = []
    record = lambda i, n, x, d: starts.append(x) if i == 0 else None  # noqa: E731
    run(model, 11, latent=torch.zeros(shape), callback=record)
    scale = full_noise_scale(karras(model)[0])
    assert torch.equal(starts[0], latent_noise(11, shape) * scale)
    # The second image's noise continues the stream; it is not seed 12's noise.
    assert not torch.equal(starts[0][1:], latent_noise(12) * scale)


def test_ancestral_steps_draw_from_a_fresh_generator_seeded_with_seed_plus_one(
    model: DiffusionModel,
) -> None:
    # ComfyUI's default noise sampler on the CPU: a new generator seeded with seed + 1 (seed on
    # CUDA), independent of the generator that drew the initial noise.
    sigmas = karras(model)
    x = latent_noise(11) * full_noise_scale(sigmas[0])
    denoiser = GuidedDenoiser(model, conditioning(1), conditioning(2), 5.0)
    step_noise = GaussianNoise(x, torch.Generator().manual_seed(12))
    expected = sample_euler_ancestral(denoiser, x, sigmas, noise=step_noise)
    assert torch.equal(run(model, 11, "euler_ancestral"), expected)


@pytest.mark.parametrize("sampler", ["dpmpp_2m_sde", "dpmpp_sde"])
def test_sde_samplers_use_a_brownian_tree_seeded_with_the_seed(
    model: DiffusionModel, sampler: str
) -> None:
    sigmas = karras(model)
    x = latent_noise(11) * full_noise_scale(sigmas[0])
    denoiser = GuidedDenoiser(model, conditioning(1), conditioning(2), 5.0)
    expected = SAMPLERS[sampler](denoiser, x, sigmas, noise=BrownianTreeNoise(x, sigmas, 11))
    assert torch.equal(run(model, 11, sampler), expected)


@pytest.mark.parametrize("sampler", ["dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"])
def test_some_samplers_drop_the_penultimate_sigma_of_a_longer_schedule(
    model: DiffusionModel, sampler: str
) -> None:
    longer = karras(model, STEPS + 1)
    sigmas = torch.cat([longer[:-2], longer[-1:]])
    assert len(sigmas) == STEPS + 1
    x = latent_noise(11) * full_noise_scale(sigmas[0])
    denoiser = GuidedDenoiser(model, conditioning(1), conditioning(2), 5.0)
    step_noise = GaussianNoise(x, torch.Generator().manual_seed(12))
    expected = SAMPLERS[sampler](denoiser, x, sigmas, noise=step_noise)
    seen: list[int] = []
    result = run(model, 11, sampler, callback=lambda i, n, x, d: seen.append(n))
    assert seen == [STEPS] * STEPS
    assert torch.equal(result, expected)


def test_a_schedule_starting_below_sigma_max_scales_the_noise_by_sigma(
    model: DiffusionModel,
) -> None:
    # ddim_uniform's first timestep for 4 steps is 751, below the last training step.
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    sigmas = sigmas_ddim_uniform(schedule, STEPS)
    assert float(sigmas[0]) < schedule.sigma_max
    starts: list[Tensor] = []
    record = lambda i, n, x, d: starts.append(x) if i == 0 else None  # noqa: E731
    run(model, 11, scheduler="ddim_uniform", callback=record)
    assert torch.equal(starts[0], latent_noise(11) * sigmas[0] + torch.zeros(LATENT_SHAPE))


def test_unknown_sampler_lists_valid_names_before_any_work(model: DiffusionModel) -> None:
    calls: list[int] = []
    unet: Any = model.unet
    handle = unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        with pytest.raises(UnknownNameError) as caught:
            run(model, 1, "Euler a")
    finally:
        handle.remove()
    assert calls == []
    assert str(caught.value) == (
        f"unknown sampler 'Euler a'; expected one of: {', '.join(SAMPLERS)}. "
        "Pick one of those names (they are case-sensitive)."
    )
    with pytest.raises(UnknownNameError, match="unknown scheduler 'linear'"):
        run(model, 1, scheduler="linear")


def test_partial_denoise_runs_the_tail_of_a_longer_schedule(model: DiffusionModel) -> None:
    latent = torch.full(LATENT_SHAPE, 0.5)
    seen: list[tuple[int, int, Tensor]] = []
    run(model, 3, latent=latent, denoise=0.5, callback=lambda i, n, x, d: seen.append((i, n, x)))
    assert [(i, n) for i, n, _ in seen] == [(i, STEPS) for i in range(STEPS)]
    full = sigmas_karras(DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), 2 * STEPS)
    assert torch.equal(seen[0][2], latent + latent_noise(3) * full[STEPS])


def test_zero_denoise_returns_the_latent(model: DiffusionModel) -> None:
    latent = torch.randn(LATENT_SHAPE)
    assert torch.equal(run(model, 3, latent=latent, denoise=0.0), latent)


class Cancelled(Exception):
    pass


def test_raising_from_the_callback_cancels(model: DiffusionModel) -> None:
    def cancel(i: int, n: int, x: Tensor, denoised: Tensor) -> None:
        if i == 1:
            raise Cancelled

    with pytest.raises(Cancelled):
        run(model, 3, callback=cancel)


class ZeroPatch:
    target = "conv_in.bias"

    def delta(self, weight: Tensor) -> Tensor:
        return torch.zeros_like(weight)


def test_weight_patches_are_applied_around_sampling(
    model: DiffusionModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for models/patching.py (another package), to pin only our side of the contract.
    events: list[str] = []

    @contextmanager
    def applied(module: torch.nn.Module, patches: Sequence[WeightPatch]) -> Iterator[Any]:
        assert module is model.unet and list(patches) == [patch]
        events.append("enter")
        yield module
        events.append("exit")

    fake = ModuleType("latentloom.models.patching")
    fake.applied = applied  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "latentloom.models.patching", fake)
    patch = ZeroPatch()
    patched = DiffusionModel(**{**model.__dict__, "patches": (patch,)})
    run(patched, 3, callback=lambda i, n, x, d: events.append(f"step {i}"))
    assert events == ["enter", *[f"step {i}" for i in range(STEPS)], "exit"]
