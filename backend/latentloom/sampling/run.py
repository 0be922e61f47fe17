"""Run a named sampler and schedule on a model: the whole of a KSampler node's work.

Seeding follows ComfyUI and diffusers: one CPU `torch.Generator` seeded with `seed` draws the
initial noise (so a seed gives the same image on any device) and then keeps supplying the
per-step noise of ancestral/SDE samplers, as a diffusers pipeline's `generator` does;
dpmpp_sde instead uses a Brownian tree seeded with `seed`.

The starting point is x = latent + noise * sigmas[0]. k-diffusion and diffusers' Euler-type
schedulers (with "linspace"/"trailing" spacing and Karras-style sigmas) agree on this;
ComfyUI and diffusers' "leading" spacing scale by sqrt(sigma_max^2 + 1) instead at full denoise,
a ~0.2% larger start for SD's sigma_max of 14.6.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import cast

import torch
from torch import Tensor

from latentloom.models.handles import Conditioning, DiffusionModel
from latentloom.sampling.denoiser import GuidedDenoiser, SdxlSizeConditioning
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.noise import BrownianTreeNoise, GaussianNoise, NoiseSource
from latentloom.sampling.protocols import StepCallback
from latentloom.sampling.samplers import BROWNIAN_NOISE_SAMPLERS, get_sampler
from latentloom.sampling.schedules import compute_sigmas


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
) -> Tensor:
    """Denoise `latent_samples` ([B, C, H, W]); returns a float32 latent on the CPU.

    Sampling runs on `device` (default: the UNet's). denoise < 1 starts part-way down a longer
    schedule (img2img); denoise = 0 returns the latent unchanged. Unknown sampler or scheduler
    names raise UnknownNameError (a ValueError) before any work is done. To cancel, raise from
    `callback`.
    """
    sampler_fn = get_sampler(sampler)
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    sigmas = compute_sigmas(scheduler, schedule, steps, denoise)
    if sigmas.numel() == 0:
        return latent_samples.detach().to("cpu", torch.float32).clone()
    unet = cast(torch.nn.Module, model.unet)  # diffusers' classes are untyped for mypy
    device = torch.device(device) if device is not None else next(unet.parameters()).device
    latent = latent_samples.detach().to(device, torch.float32)
    generator = torch.Generator("cpu").manual_seed(seed)
    initial_noise = torch.randn(latent.shape, generator=generator, dtype=torch.float32)
    x = latent + initial_noise.to(device) * sigmas[0]
    noise: NoiseSource = (
        BrownianTreeNoise(x, sigmas, seed)
        if sampler in BROWNIAN_NOISE_SAMPLERS
        else GaussianNoise(x, generator)
    )
    denoiser = GuidedDenoiser(model, positive, negative, cfg, added_cond=added_cond)
    with _weight_patches(model):
        result = sampler_fn(denoiser, x, sigmas, callback=callback, noise=noise)
    return result.to("cpu", torch.float32)


def _weight_patches(model: DiffusionModel) -> AbstractContextManager[object]:
    """LoRA and other weight patches, applied to the UNet only while sampling."""
    if not model.patches:
        return nullcontext()
    # Imported lazily: patching is only needed (and only loaded) when patches exist.
    from latentloom.models.patching import applied

    return applied(cast(torch.nn.Module, model.unet), model.patches)
