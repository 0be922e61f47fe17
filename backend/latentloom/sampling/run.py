"""Run a sampler on a model: the one path KSampler, KSampler Advanced and Sampler Custom share.

`run_sampling` takes what the custom-sampling nodes name (sigmas, NOISE, SAMPLER, GUIDER; see
custom.py) and does, in order: the start latent from the start noise, the per-step noise, the
guided denoiser (with an inpainting model's extra input), the noise-mask wrapper (masked.py),
the sampler, and the final blend with the source under the mask. `sample` (KSampler) and
`sample_advanced` (KSampler Advanced) only build their sigmas and noise and call it.

Every numeric convention is ComfyUI's, so a graph gives ComfyUI's picture for the same
checkpoint, seed and settings:

* the schedule: ComfyUI's sigmas (schedules.py, sigma_ops.py), computed one step longer with
  the second-to-last sigma dropped for dpm_2, dpm_2_ancestral and the uni_pc samplers, and for
  denoise < 1 the tail of an int(steps / denoise)-step schedule;
* the start: CPU noise from the seed over the whole batch, put on the model's path by its
  `ModelSampling.noise_scaling` (SD: latent + noise scaled by sqrt(1 + sigma^2) when the
  schedule starts at sigma_max and by sigma otherwise, start.py; flow: sigma * noise +
  (1 - sigma) * latent), and the result taken back by `inverse_noise_scaling` (flow: a
  leftover-noise latent divided by 1 - sigma, so a second pass without added noise resumes
  it exactly);
* the per-step noise: a fresh generator seeded with the seed on the sampling device for
  ancestral samplers and LCM, a seeded CPU Brownian tree for dpmpp_sde and dpmpp_2m_sde
  (noise.py); a run that starts part-way (KSampler Advanced's second half) starts that noise
  afresh, as ComfyUI does.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from latentloom.models.handles import Conditioning, DiffusionModel
from latentloom.sampling.custom import DisabledNoise, Guider, Noise, RandomNoise, SamplerChoice
from latentloom.sampling.denoiser import SdxlSizeConditioning, TimestepMap
from latentloom.sampling.masked import (
    INPAINT_CONCAT_CHANNELS,
    MaskedDenoiser,
    blend,
    inpaint_concat,
    prepare_mask,
)
from latentloom.sampling.protocols import Denoiser, StepCallback
from latentloom.sampling.sigma_ops import advanced_range, ksampler_sigmas


@dataclass(frozen=True)
class SamplingResult:
    """The sampled latent and the last step's x0 prediction (Sampler Custom's two outputs),
    float32 on the CPU. With no step to take both are the input latent."""

    samples: Tensor
    denoised: Tensor


@torch.inference_mode()  # no autograd bookkeeping at all: measurably faster than no_grad
def run_sampling(
    guider: Guider,
    sampler: SamplerChoice,
    sigmas: Tensor,
    latent_samples: Tensor,
    noise: Noise,
    *,
    noise_mask: Tensor | None = None,
    callback: StepCallback | None = None,
    device: torch.device | str | None = None,
    added_cond: SdxlSizeConditioning | None = None,
    timesteps: TimestepMap = "nearest",
) -> SamplingResult:
    """Integrate `latent_samples` ([B, C, H, W]) down `sigmas` with `guider` and `sampler`.

    `noise_mask` ([B or 1, H, W], any resolution) limits the change to where it is 1. Empty
    sigmas return the latent unchanged. To cancel, raise from `callback`.
    """
    if sigmas.numel() == 0:
        unchanged = latent_samples.detach().to("cpu", torch.float32).clone()
        return SamplingResult(unchanged, unchanged)
    model = guider.model
    unet = cast(torch.nn.Module, model.unet)  # diffusers' classes are untyped for mypy
    device = torch.device(device) if device is not None else next(unet.parameters()).device
    source = latent_samples.detach().to(device, torch.float32)
    start_noise = noise.generate(latent_samples).to(device)
    sampling = model.model_sampling
    x = sampling.noise_scaling(sigmas[0], start_noise, source)
    mask = prepare_mask(noise_mask, source.shape).to(device) if noise_mask is not None else None
    denoiser: Denoiser = guider.denoiser(
        concat=_concat_input(model, source, mask), added_cond=added_cond, timesteps=timesteps
    )
    if mask is not None:
        inpaint_noise = sampler.inpaint_noise(start_noise, noise.seed)
        denoiser = MaskedDenoiser(denoiser, source, inpaint_noise, mask, sampling=sampling)
    last = _LastDenoised(callback)
    with _weight_patches(model), _attention_patches(model):
        result = sampler.function_for(sampling.kind)(
            denoiser,
            x,
            sigmas,
            callback=last,
            noise=sampler.step_noise(x, sigmas, noise.seed),
        )
    result = sampling.inverse_noise_scaling(sigmas[-1], result)
    if mask is not None:
        result = blend(result, source, mask)
    samples = result.to("cpu", torch.float32)
    denoised = samples if last.denoised is None else last.denoised.to("cpu", torch.float32)
    return SamplingResult(samples, denoised)


def sample(
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    latent_samples: Tensor,
    *,
    seed: int,
    steps: int,
    cfg: float,
    sampler: str,
    scheduler: str,
    denoise: float = 1.0,
    noise_mask: Tensor | None = None,
    callback: StepCallback | None = None,
    device: torch.device | str | None = None,
    added_cond: SdxlSizeConditioning | None = None,
    timesteps: TimestepMap = "nearest",
) -> Tensor:
    """KSampler: denoise `latent_samples`; returns a float32 latent on the CPU.

    Sampling runs on `device` (default: the UNet's). denoise < 1 starts part-way down a longer
    schedule (img2img); denoise = 0 returns the latent unchanged. Unknown sampler or scheduler
    names raise UnknownNameError (a ValueError) before any work is done.
    """
    sigmas = ksampler_sigmas(model, sampler, scheduler, steps, denoise)
    return run_sampling(
        Guider(model, positive, negative, cfg),
        SamplerChoice(sampler),
        sigmas,
        latent_samples,
        RandomNoise(seed),
        noise_mask=noise_mask,
        callback=callback,
        device=device,
        added_cond=added_cond,
        timesteps=timesteps,
    ).samples


def sample_advanced(
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    latent_samples: Tensor,
    *,
    add_noise: bool,
    seed: int,
    steps: int,
    cfg: float,
    sampler: str,
    scheduler: str,
    start_at_step: int,
    end_at_step: int,
    return_with_leftover_noise: bool,
    noise_mask: Tensor | None = None,
    callback: StepCallback | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """KSampler Advanced: steps start..end of KSampler's full `steps`-step schedule.

    Without `add_noise` the latent is sampled as it is (it should carry the leftover noise of
    a first pass ending at this start); the seed still drives per-step noise. Unless
    `return_with_leftover_noise`, the last step goes to sigma 0. An empty range returns the
    latent unchanged.
    """
    full = ksampler_sigmas(model, sampler, scheduler, steps)
    sigmas = advanced_range(full, start_at_step, end_at_step, return_with_leftover_noise)
    noise: Noise = RandomNoise(seed) if add_noise else DisabledNoise(seed)
    return run_sampling(
        Guider(model, positive, negative, cfg),
        SamplerChoice(sampler),
        sigmas,
        latent_samples,
        noise,
        noise_mask=noise_mask,
        callback=callback,
        device=device,
    ).samples


class _LastDenoised:
    """Forwards each step to the caller's callback and keeps the step's x0 prediction."""

    def __init__(self, callback: StepCallback | None) -> None:
        self.callback = callback
        self.denoised: Tensor | None = None

    def __call__(self, step: int, total: int, x: Tensor, denoised: Tensor) -> None:
        self.denoised = denoised
        if self.callback is not None:
            self.callback(step, total, x, denoised)


def _concat_input(model: DiffusionModel, source: Tensor, mask: Tensor | None) -> Tensor | None:
    """An inpainting UNet's extra input channels, or None for a plain UNet."""
    extra = concat_channels(model, source.shape[1])
    if extra == 0:
        return None
    if extra != INPAINT_CONCAT_CHANNELS:
        raise ValueError(
            f"{model.source}: the UNet takes {source.shape[1] + extra} input channels for a "
            f"{source.shape[1]}-channel latent; only inpainting models' "
            f"{source.shape[1] + INPAINT_CONCAT_CHANNELS} (latent, mask, masked image) are "
            f"supported"
        )
    return inpaint_concat(source, mask)


def concat_channels(model: DiffusionModel, latent_channels: int) -> int:
    """How many input channels the UNet takes beyond the latent's (5 for inpainting models)."""
    return max(model.input_channels - latent_channels, 0)


def _weight_patches(model: DiffusionModel) -> AbstractContextManager[object]:
    """LoRA and other weight patches, applied to the UNet only while sampling."""
    if not model.patches:
        return nullcontext()
    # Imported lazily: patching is only needed (and only loaded) when patches exist.
    from latentloom.models.patching import applied

    return applied(cast(torch.nn.Module, model.unet), model.patches)


def _attention_patches(model: DiffusionModel) -> AbstractContextManager[object]:
    """IP-Adapter and other attention patches, installed in the UNet only while sampling."""
    if not model.attention_patches:
        return nullcontext()
    from latentloom.models.attention_patching import installed

    unet = cast(torch.nn.Module, model.unet)
    return installed(unet, model.attention_patches, model.source)
