"""KSampler's path on a rectified-flow model: start noise, schedulers, network call, hand-off.

The model is a real DiffusionModel with SD3's FlowSampling and a `network_call` that predicts
the exact flow velocity v = (x - D) / s of Gaussian data x0 ~ N(MU, SPREAD^2) (sigma read back
from the timestep, as SD3's transformer gets sigma * 1000). It also records what each call
received, so the tests see exactly what the denoiser hands a transformer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import pytest
import torch
from torch import Tensor

from latentloom.models.family import SD3
from latentloom.models.handles import Conditioning, ConditioningEntry, DiffusionModel
from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.align_your_steps import ScheduleNeedsFamilyError
from latentloom.sampling.masked import MaskedDenoiser
from latentloom.sampling.model_sampling import sd3_sampling
from latentloom.sampling.run import sample, sample_advanced
from latentloom.sampling.samplers import FLOW_REFUSED, SAMPLERS, SamplerNotForFlowError
from latentloom.sampling.schedules import SCHEDULES
from latentloom.sampling.start import initial_noise

SHAPE = (1, 16, 8, 8)
MU, SPREAD = 0.5, 0.5
TOKENS, WIDTH, POOLED = 5, 12, 7


class GaussianVelocity:
    """The exact flow network for N(MU, SPREAD^2) data; remembers every call's inputs."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def __call__(
        self,
        x_in: Tensor,
        timestep: Tensor,
        context: Tensor,
        pooled: Tensor | None,
        extras: Mapping[str, Tensor],
    ) -> Tensor:
        self.calls.append(
            {"rows": x_in.shape[0], "t": float(timestep), "pooled": pooled, "x_in": x_in, **extras}
        )
        s = timestep / 1000.0
        a, var = 1 - s, SPREAD**2
        x0 = MU + a * var / (a**2 * var + s**2) * (x_in - a * MU)
        return (x_in - x0) / s


def flow_model(call: GaussianVelocity) -> DiffusionModel:
    return DiffusionModel(
        unet=cast(Any, torch.nn.Linear(1, 1)),  # only its dtype and device are read
        family=SD3,
        prediction_type="epsilon",
        alphas_cumprod=alphas_cumprod(),
        source="toy-flow",
        sampling=sd3_sampling(),
        network_call=call,
    )


def prompt(seed: int, guidance: float | None = None) -> Conditioning:
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, TOKENS, WIDTH, generator=generator)
    pooled = torch.randn(1, POOLED, generator=generator)
    return Conditioning((ConditioningEntry(embeds, pooled, guidance=guidance),))


def run(sampler: str, scheduler: str = "simple", steps: int = 4, **kw: object) -> Tensor:
    model = flow_model(GaussianVelocity())
    latent = kw.pop("latent", torch.zeros(SHAPE))
    assert isinstance(latent, Tensor)
    return sample(
        model,
        prompt(1),
        prompt(2),
        latent,
        seed=7,
        steps=steps,
        cfg=kw.pop("cfg", 4.0),  # type: ignore[arg-type]
        sampler=sampler,
        scheduler=scheduler,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_flow_sampler_runs_through_ksampler(sampler: str) -> None:
    result = run(sampler)
    assert torch.isfinite(result).all()
    # Both prompts predict the same data, so guidance leaves it alone: the mean is the data's,
    # scaled by 1 - s where a sampler stops at the last nonzero sigma s (DPM-fast / adaptive
    # as in ComfyUI: 0.5 for 4 "simple" steps at shift 3).
    stop = 0.5 if sampler in ("dpm_fast", "dpm_adaptive") else 0.0
    assert float(result.mean()) == pytest.approx((1 - stop) * MU, abs=0.1)


@pytest.mark.parametrize("scheduler", sorted(set(SCHEDULES) - {"align_your_steps"}))
def test_every_scheduler_runs_on_a_flow_model(scheduler: str) -> None:
    result = run("euler", scheduler, steps=6)
    assert torch.isfinite(result).all()
    assert float(result.mean()) == pytest.approx(MU, abs=0.1)


def test_align_your_steps_has_no_flow_table() -> None:
    with pytest.raises(ScheduleNeedsFamilyError, match="got family 'sd3'"):
        run("euler", "align_your_steps")


def test_a_sampler_without_flow_form_is_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(FLOW_REFUSED, "heun", "euler")  # none lacks one today
    call = GaussianVelocity()
    with pytest.raises(SamplerNotForFlowError, match="'heun'"):
        sample(
            flow_model(call), prompt(1), prompt(2), torch.zeros(SHAPE),
            seed=1, steps=2, cfg=1.0, sampler="heun", scheduler="simple",
        )  # fmt: skip
    assert call.calls == []


def test_the_network_gets_sigma_times_1000_and_the_batched_pooled() -> None:
    call = GaussianVelocity()
    sample(
        flow_model(call), prompt(1), prompt(2), torch.zeros(SHAPE),
        seed=1, steps=2, cfg=3.0, sampler="euler", scheduler="simple",
    )  # fmt: skip
    # One call per step on [uncond, cond]; simple picks table entries t = 1 and 0.5 -> 1000
    # and 1000 * 0.75 (shift 3).
    assert [c["t"] for c in call.calls] == [1000.0, 750.0]
    assert [c["rows"] for c in call.calls] == [2, 2]
    pooled = call.calls[0]["pooled"]
    assert isinstance(pooled, Tensor)
    assert torch.equal(pooled, torch.cat([prompt(2).first.pooled, prompt(1).first.pooled]))  # type: ignore[list-item]
    assert "guidance" not in call.calls[0]


def test_guidance_travels_per_entry_and_splits_calls() -> None:
    call = GaussianVelocity()
    sample(
        flow_model(call), prompt(1, guidance=3.5), prompt(2, guidance=1.0), torch.zeros(SHAPE),
        seed=1, steps=1, cfg=2.0, sampler="euler", scheduler="simple",
    )  # fmt: skip
    # Different guidance: negative and positive run as two calls, each with its own value.
    assert [c["rows"] for c in call.calls] == [1, 1]
    assert [c["guidance"].tolist() for c in call.calls] == [[1.0], [3.5]]  # type: ignore[attr-defined]


def test_full_denoise_starts_from_pure_noise() -> None:
    # At sigma 1 the start is the noise itself, whatever the latent (no sqrt(1 + s^2) here).
    a = run("euler", steps=3, latent=torch.zeros(SHAPE))
    b = run("euler", steps=3, latent=torch.full(SHAPE, 5.0))
    assert torch.equal(a, b)


def test_img2img_starts_on_the_flow_path() -> None:
    # denoise 0.5 with 2 steps runs the last 2 of 4 "simple" steps: from t = 0.5, sigma 0.75.
    call = GaussianVelocity()
    latent = torch.full(SHAPE, 5.0)
    sample(
        flow_model(call), prompt(1), prompt(2), latent,
        seed=9, steps=2, cfg=1.0, sampler="euler", scheduler="simple", denoise=0.5,
    )  # fmt: skip
    noise = initial_noise(9, SHAPE)
    first = call.calls[0]
    assert first["t"] == 750.0
    assert torch.allclose(first["x_in"], 0.75 * noise + 0.25 * latent, atol=1e-6)  # type: ignore[arg-type]


def test_leftover_noise_hand_off_equals_one_run() -> None:
    """KSampler Advanced 0..3 with leftover noise, then 3..8 without added noise, is the same
    deterministic run as 0..8: inverse_noise_scaling and noise_scaling undo each other."""
    model = flow_model(GaussianVelocity())
    latent = torch.zeros(SHAPE)
    common = {"seed": 3, "steps": 8, "cfg": 2.0, "sampler": "euler", "scheduler": "simple"}
    whole = sample_advanced(
        model, prompt(1), prompt(2), latent, add_noise=True, start_at_step=0, end_at_step=8,
        return_with_leftover_noise=False, **common,  # type: ignore[arg-type]
    )  # fmt: skip
    first = sample_advanced(
        model, prompt(1), prompt(2), latent, add_noise=True, start_at_step=0, end_at_step=3,
        return_with_leftover_noise=True, **common,  # type: ignore[arg-type]
    )  # fmt: skip
    second = sample_advanced(
        model, prompt(1), prompt(2), first, add_noise=False, start_at_step=3, end_at_step=8,
        return_with_leftover_noise=False, **common,  # type: ignore[arg-type]
    )  # fmt: skip
    assert torch.allclose(second, whole, atol=1e-5)
    # The hand-off latent is x / (1 - sigma): not the raw x the sampler stopped at.
    assert not torch.allclose(first, whole, atol=1e-2)


def test_masked_sampling_keeps_the_source_and_renoises_on_the_flow_path() -> None:
    source = torch.full(SHAPE, 2.0)
    mask = torch.zeros(1, 8, 8)
    mask[:, :, 4:] = 1.0
    call = GaussianVelocity()
    result = sample(
        flow_model(call), prompt(1), prompt(2), source,
        seed=1, steps=3, cfg=1.0, sampler="euler", scheduler="simple", noise_mask=mask,
    )  # fmt: skip
    assert torch.equal(result[..., :4], source[..., :4])
    assert torch.isfinite(result).all()


def test_model_copy_keeps_the_network_call() -> None:
    call = GaussianVelocity()
    model = flow_model(call)
    shifted = replace(model, sampling=sd3_sampling(6.0))
    assert shifted.network_call is call
    assert shifted.model_sampling.percent_to_sigma(0.5) == pytest.approx(6 * 0.5 / (1 + 5 * 0.5))
    assert model.model_sampling.percent_to_sigma(0.5) == 0.75


def test_masked_denoiser_renoises_the_kept_region_on_the_flow_path() -> None:
    seen: list[Tensor] = []

    def inner(x: Tensor, sigma: Tensor, /, **extra_args: object) -> Tensor:
        seen.append(x)
        return x

    source, noise = torch.full(SHAPE, 2.0), torch.full(SHAPE, -1.0)
    keep_all = torch.zeros(SHAPE)  # mask 0: every pixel is the re-noised source
    denoiser = MaskedDenoiser(inner, source, noise, keep_all, sampling=sd3_sampling())
    denoiser(torch.zeros(SHAPE), torch.tensor(0.25))
    assert torch.equal(seen[0], torch.full(SHAPE, 0.25 * -1.0 + 0.75 * 2.0))
