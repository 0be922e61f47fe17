"""Run a named sampler and schedule on a model: the whole of a KSampler node's work.

Every numeric convention here is ComfyUI's, so a graph gives ComfyUI's picture for the same
checkpoint, seed and settings:

* the schedule: ComfyUI's sigmas (schedules.py), computed one step longer with the
  second-to-last sigma dropped for dpm_2, dpm_2_ancestral and the uni_pc samplers, and for
  denoise < 1 the tail of an int(steps / denoise)-step schedule;
* the start: CPU noise from the seed over the whole batch, scaled by sqrt(1 + sigma^2) when
  the schedule starts at sigma_max and by sigma otherwise (start.py);
* the per-step noise: a fresh generator seeded with the seed on the sampling device for
  ancestral samplers and LCM, a seeded CPU Brownian tree for dpmpp_sde and dpmpp_2m_sde
  (noise.py).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import cast

import torch
from torch import Tensor

from latentloom.models.handles import Conditioning, DiffusionModel
from latentloom.sampling.denoiser import GuidedDenoiser, SdxlSizeConditioning, TimestepMap
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.noise import BrownianTreeNoise, NoiseSource, StepNoise
from latentloom.sampling.protocols import StepCallback
from latentloom.sampling.samplers import (
    BROWNIAN_NOISE_SAMPLERS,
    DISCARD_PENULTIMATE_SAMPLERS,
    get_sampler,
)
from latentloom.sampling.schedules import compute_sigmas
from latentloom.sampling.start import initial_noise, start_latent


@torch.inference_mode()  # no autograd bookkeeping at all: measurably faster than no_grad
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
    callback: StepCallback | None = None,
    device: torch.device | str | None = None,
    added_cond: SdxlSizeConditioning | None = None,
    timesteps: TimestepMap = "nearest",
) -> Tensor:
    """Denoise `latent_samples` ([B, C, H, W]); returns a float32 latent on the CPU.

    Sampling runs on `device` (default: the UNet's). denoise < 1 starts part-way down a longer
    schedule (img2img); denoise = 0 returns the latent unchanged. Unknown sampler or scheduler
    names raise UnknownNameError (a ValueError) before any work is done. To cancel, raise from
    `callback`.
    """
    sampler_fn = get_sampler(sampler)
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    sigmas = compute_sigmas(
        scheduler,
        schedule,
        steps,
        denoise,
        discard_penultimate=sampler in DISCARD_PENULTIMATE_SAMPLERS,
    )
    if sigmas.numel() == 0:
        return latent_samples.detach().to("cpu", torch.float32).clone()
    unet = cast(torch.nn.Module, model.unet)  # diffusers' classes are untyped for mypy
    device = torch.device(device) if device is not None else next(unet.parameters()).device
    latent = latent_samples.detach().to(device, torch.float32)
    noise = initial_noise(seed, latent.shape).to(device)
    x = start_latent(latent, noise, sigmas, schedule.sigma_max)
    step_noise: NoiseSource = (
        BrownianTreeNoise(x, sigmas, seed)
        if sampler in BROWNIAN_NOISE_SAMPLERS
        else StepNoise(x, seed)
    )
    denoiser = GuidedDenoiser(
        model, positive, negative, cfg, added_cond=added_cond, timesteps=timesteps
    )
    with _weight_patches(model):
        result = sampler_fn(denoiser, x, sigmas, callback=callback, noise=step_noise)
    return result.to("cpu", torch.float32)


def _weight_patches(model: DiffusionModel) -> AbstractContextManager[object]:
    """LoRA and other weight patches, applied to the UNet only while sampling."""
    if not model.patches:
        return nullcontext()
    # Imported lazily: patching is only needed (and only loaded) when patches exist.
    from latentloom.models.patching import applied

    return applied(cast(torch.nn.Module, model.unet), model.patches)
