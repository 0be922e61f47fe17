"""GuidedDenoiser on a tiny random UNet against diffusers' own sampling loop.

The oracle is what StableDiffusion(XL)Pipeline does: EulerDiscreteScheduler with Karras sigmas,
one UNet call per step on the batch [uncond, cond], guidance on the noise prediction, with the
UNet given ComfyUI's nearest training timesteps as ours is (`with_nearest_timesteps`). Our side
is the public `sample()` with sampler "euler" and scheduler "karras". The model shares the
scheduler's float32 training alphas, so only arithmetic order differs: measured gaps are
<= 2e-6 of the latent's scale; the tolerance is 1e-5.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import EulerDiscreteScheduler
from torch import Tensor

from latentloom.models.handles import Conditioning, DiffusionModel, PredictionType
from latentloom.sampling.denoiser import GuidedDenoiser, SdxlSizeConditioning, match_token_lengths
from latentloom.sampling.run import sample
from tests.sampling.oracles import (
    IGNORE_DIFFUSERS_NUMPY_WARNINGS,
    SD_SCHEDULER_CONFIG,
    compare,
    with_nearest_timesteps,
)
from tests.sampling.tiny_models import LATENT_SHAPE, conditioning, latent_noise, tiny_model

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS
TOLERANCE = 1e-5
SEED, STEPS, CFG = 3, 6, 7.5


def karras_scheduler(prediction_type: PredictionType = "epsilon") -> Any:
    scheduler: Any = with_nearest_timesteps(
        EulerDiscreteScheduler(
            **SD_SCHEDULER_CONFIG, use_karras_sigmas=True, prediction_type=prediction_type
        )
    )
    scheduler.set_timesteps(STEPS)
    return scheduler


def model_for(
    scheduler: Any, *, sdxl: bool = False, prediction_type: PredictionType = "epsilon"
) -> DiffusionModel:
    alphas = scheduler.alphas_cumprod.double()
    return tiny_model(sdxl=sdxl, prediction_type=prediction_type, alphas_cumprod=alphas)


@torch.no_grad()
def diffusers_loop(
    model: DiffusionModel,
    scheduler: Any,
    positive: Conditioning,
    negative: Conditioning,
    cfg: float,
    time_ids: Tensor | None = None,
) -> Tensor:
    """StableDiffusion(XL)Pipeline's denoising loop, written out."""
    guided = cfg != 1.0
    cond, uncond = positive.first, negative.first
    embeds = torch.cat([uncond.embeds, cond.embeds]) if guided else cond.embeds
    added: dict[str, Tensor] | None = None
    if cond.pooled is not None and uncond.pooled is not None and time_ids is not None:
        pooled = torch.cat([uncond.pooled, cond.pooled]) if guided else cond.pooled
        added = {"text_embeds": pooled, "time_ids": time_ids.expand(pooled.shape[0], -1)}
    # diffusers would start at noise * init_noise_sigma (= sigma_max for Karras sigmas); the
    # equivalent of ComfyUI's (and our) full-denoise start is noise * sqrt(1 + sigma_max^2).
    sigma_max = scheduler.sigmas[0].to(torch.float32)
    latents = latent_noise(SEED) * torch.sqrt(1.0 + sigma_max**2.0)
    unet: Any = model.unet
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents] * (2 if guided else 1)), t)
        output = unet(
            model_input, t, encoder_hidden_states=embeds, added_cond_kwargs=added, return_dict=False
        )[0]
        if guided:
            uncond, cond = output.chunk(2)
            output = uncond + cfg * (cond - uncond)
        latents = scheduler.step(output, t, latents, return_dict=False)[0]
    return latents


def ours(
    model: DiffusionModel, positive: Conditioning, negative: Conditioning, **kw: Any
) -> Tensor:
    options: dict[str, Any] = {"seed": SEED, "steps": STEPS, "cfg": CFG} | kw
    return sample(
        model,
        positive,
        negative,
        torch.zeros(LATENT_SHAPE),
        sampler="euler",
        scheduler="karras",
        **options,
    )


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_euler_karras_matches_diffusers_pipeline_loop(prediction_type: PredictionType) -> None:
    scheduler = karras_scheduler(prediction_type)
    model = model_for(scheduler, prediction_type=prediction_type)
    positive, negative = conditioning(1), conditioning(2)
    expected = diffusers_loop(model, scheduler, positive, negative, CFG)
    assert compare(ours(model, positive, negative), expected) <= TOLERANCE


def test_sdxl_passes_pooled_embeds_and_size_ids() -> None:
    scheduler = karras_scheduler()
    model = model_for(scheduler, sdxl=True)
    positive, negative = conditioning(1, pooled=True), conditioning(2, pooled=True)
    # Default: original = target = the latent's size in pixels, no crop.
    default_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])
    expected = diffusers_loop(model, scheduler, positive, negative, CFG, default_ids)
    assert compare(ours(model, positive, negative), expected) <= TOLERANCE
    size = SdxlSizeConditioning(
        original_size=(96, 128), target_size=(64, 64), crop_top_left=(8, 16)
    )
    custom_ids = torch.tensor([[96.0, 128.0, 8.0, 16.0, 64.0, 64.0]])
    expected = diffusers_loop(model, karras_scheduler(), positive, negative, CFG, custom_ids)
    assert compare(ours(model, positive, negative, added_cond=size), expected) <= TOLERANCE


def count_unet_batches(model: DiffusionModel) -> list[int]:
    """Record the batch size of every UNet call."""
    batches: list[int] = []
    unet: Any = model.unet
    unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    return batches


def test_guidance_batches_uncond_and_cond_in_one_call() -> None:
    model = tiny_model()
    batches = count_unet_batches(model)
    ours(model, conditioning(1), conditioning(2))
    assert batches == [2] * STEPS


def test_cfg_one_skips_the_uncond_pass() -> None:
    scheduler = karras_scheduler()
    model = model_for(scheduler)
    positive, negative = conditioning(1), conditioning(2)
    batches = count_unet_batches(model)
    result = ours(model, positive, negative, cfg=1.0)
    assert batches == [1] * STEPS
    expected = diffusers_loop(model, scheduler, positive, negative, 1.0)
    assert compare(result, expected) <= TOLERANCE


def test_token_lengths_are_matched_by_repetition() -> None:
    short, long = conditioning(1, tokens=77).first.embeds, conditioning(2, tokens=154).first.embeds
    a, b = match_token_lengths(short, long)
    assert a.shape == b.shape == (1, 154, 32)
    assert torch.equal(a, torch.cat([short, short], dim=1)) and torch.equal(b, long)
    a, b = match_token_lengths(long, conditioning(3, tokens=231).first.embeds)
    assert a.shape[1] == b.shape[1] == 462  # lcm(154, 231)


def test_prompts_of_different_lengths_sample_like_explicitly_repeated_ones() -> None:
    model = tiny_model()
    positive, negative = conditioning(1, tokens=77), conditioning(2, tokens=154)
    repeated = Conditioning.of(positive.first.embeds.repeat(1, 2, 1))
    assert torch.equal(ours(model, positive, negative), ours(model, repeated, negative))


def test_unet_runs_in_its_own_dtype_and_returns_x_dtype() -> None:
    model = tiny_model()
    unet: Any = model.unet
    unet.half()
    seen: list[torch.dtype] = []
    unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    denoiser = GuidedDenoiser(model, conditioning(1), conditioning(2), CFG)
    denoised = denoiser(torch.randn(LATENT_SHAPE), torch.tensor(3.0))
    assert seen == [torch.float16]
    assert denoised.dtype == torch.float32 and bool(denoised.isfinite().all())


def test_sdxl_without_pooled_embeds_is_rejected() -> None:
    model = tiny_model(sdxl=True)
    with pytest.raises(ValueError) as caught:
        GuidedDenoiser(model, conditioning(1, pooled=True), conditioning(2), CFG)
    assert str(caught.value) == (
        "SDXL model tiny-test-unet needs a pooled text embedding, but the negative "
        "conditioning has none; encode the prompt with the SDXL text encoders"
    )


def test_size_conditioning_on_sd15_is_rejected() -> None:
    size = SdxlSizeConditioning(original_size=(64, 64), target_size=(64, 64))
    with pytest.raises(ValueError) as caught:
        GuidedDenoiser(tiny_model(), conditioning(1), conditioning(2), CFG, added_cond=size)
    assert str(caught.value) == (
        "size conditioning is only used by SDXL models, but tiny-test-unet is SD 1.x; "
        "pass added_cond=None"
    )


def unet_timesteps(model: DiffusionModel) -> list[float]:
    """Record the timestep of every UNet call."""
    seen: list[float] = []
    unet: Any = model.unet
    unet.register_forward_pre_hook(lambda module, args: seen.append(float(args[1])))
    return seen


def test_the_unet_sees_the_nearest_training_timestep_by_default() -> None:
    """ComfyUI's map: the training step whose log-sigma is nearest, never a fraction."""
    scheduler = karras_scheduler()
    model = model_for(scheduler)
    seen = unet_timesteps(model)
    ours(model, conditioning(1), conditioning(2))
    log_sigmas = ((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod).sqrt().log().float()
    karras = scheduler.sigmas[:-1].float()
    expected = [float((log_sigmas - sigma.log()).abs().argmin()) for sigma in karras]
    assert seen == expected
    assert all(t == int(t) for t in seen) and seen[0] == 999.0


def test_interpolated_timesteps_are_diffusers_fractional_ones() -> None:
    scheduler: Any = EulerDiscreteScheduler(**SD_SCHEDULER_CONFIG, use_karras_sigmas=True)
    scheduler.set_timesteps(STEPS)
    model = model_for(scheduler)
    seen = unet_timesteps(model)
    ours(model, conditioning(1), conditioning(2), timesteps="interpolated")
    fractional = [float(t) for t in scheduler.timesteps]
    assert seen == pytest.approx(fractional, abs=1e-3)
    assert any(t != int(t) for t in seen)  # Karras sigmas fall between training steps
