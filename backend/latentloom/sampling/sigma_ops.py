"""Sigma arrays as the sampling nodes build and cut them, with ComfyUI's exact slicing rules.

KSampler and KSampler Advanced compute the schedule the way ComfyUI's KSampler does (one step
longer with the penultimate sigma dropped for some samplers, see samplers.py); the custom
sampling nodes follow ComfyUI's BasicScheduler, which never drops it. The other functions are
the sigma-editing nodes: split, split by denoise, flip, and schedules from explicit bounds.
All return new float32 tensors and leave their input untouched.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from latentloom.models.handles import DiffusionModel
from latentloom.sampling.model_sampling import NoiseSchedule
from latentloom.sampling.samplers import DISCARD_PENULTIMATE_SAMPLERS, get_sampler
from latentloom.sampling.schedules import compute_sigmas, schedule_function

FLIPPED_ZERO = 0.0001  # ComfyUI's FlipSigmas: a schedule may not start at sigma 0


def model_schedule(model: DiffusionModel) -> NoiseSchedule:
    """The table and sigma maps the schedulers read: the model's own (model_sampling.py)."""
    return model.model_sampling.schedule


def ksampler_sigmas(
    model: DiffusionModel, sampler: str, scheduler: str, steps: int, denoise: float = 1.0
) -> Tensor:
    """KSampler's schedule: `steps` (of an int(steps/denoise) schedule), penultimate rule."""
    # Unknown names, and samplers a flow model cannot use, fail before any work.
    get_sampler(sampler, model.model_sampling.kind)
    return compute_sigmas(
        scheduler,
        model_schedule(model),
        steps,
        denoise,
        discard_penultimate=sampler in DISCARD_PENULTIMATE_SAMPLERS,
        family=model.family.name,  # align_your_steps reads its family's table
    )


def advanced_range(sigmas: Tensor, start: int, end: int, leftover_noise: bool) -> Tensor:
    """KSampler Advanced's cut of a full schedule: steps start..end.

    The schedule is cut to [:end + 1]; unless the leftover noise is returned, its last sigma
    becomes 0 (the range is denoised completely); then [start:]. A range with no step left is
    empty (the node returns its input), as in ComfyUI.
    """
    cut = sigmas.clone()
    if end < len(cut) - 1:
        cut = cut[: end + 1]
        if not leftover_noise:
            cut[-1] = 0.0
    if start >= len(cut) - 1:
        return cut[:0]
    return cut[start:]


def basic_scheduler_sigmas(
    model: DiffusionModel, scheduler: str, steps: int, denoise: float
) -> Tensor:
    """ComfyUI's BasicScheduler: the last steps + 1 sigmas of an int(steps / denoise) schedule.

    Unlike KSampler it never drops a penultimate sigma, counts denoise < 1 (not <= 0.9999) as
    partial, and always keeps steps + 1 sigmas (ddim_uniform's extra steps are cut).
    """
    schedule = schedule_function(scheduler, model.family.name)  # unknown names fail here
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be between 0 and 1, got {denoise}")
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float32)
    total = steps if denoise >= 1.0 else int(steps / denoise)
    return schedule(model_schedule(model), total)[-(steps + 1) :].clone()


def split_sigmas(sigmas: Tensor, step: int) -> tuple[Tensor, Tensor]:
    """(sigmas[:step + 1], sigmas[step:]): the two halves share the sigma at `step`."""
    return sigmas[: step + 1].clone(), sigmas[step:].clone()


def split_sigmas_by_denoise(sigmas: Tensor, denoise: float) -> tuple[Tensor, Tensor]:
    """The last round(steps * denoise) steps are the low half, the rest the high half.

    As ComfyUI slices: high = sigmas[:-k], low = sigmas[-(k + 1):] with k that step count, so
    k = 0 leaves high empty and low the final sigma alone.
    """
    steps = max(len(sigmas) - 1, 0)
    low_steps = round(steps * denoise)
    return sigmas[:-low_steps].clone(), sigmas[-(low_steps + 1) :].clone()


def flip_sigmas(sigmas: Tensor) -> Tensor:
    """The schedule reversed (for unsampling); a leading 0 becomes 0.0001."""
    flipped = sigmas.flip(0).clone()
    if len(flipped) > 0 and flipped[0] == 0:
        flipped[0] = FLIPPED_ZERO
    return flipped


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> Tensor:
    """Karras et al. 2022 between explicit bounds (ComfyUI's KarrasScheduler), then a 0."""
    if rho <= 0:
        raise ValueError(f"rho must be above 0 (7 is Karras et al.'s choice), got {rho}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _with_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Uniform in log-sigma between explicit bounds (ComfyUI's ExponentialScheduler), then a 0."""
    if sigma_min <= 0 or sigma_max <= 0:
        raise ValueError(
            f"an exponential schedule needs sigma_min and sigma_max above 0 (log-spaced), got "
            f"sigma_min={sigma_min}, sigma_max={sigma_max}"
        )
    logs = torch.linspace(math.log(sigma_max), math.log(sigma_min), steps, dtype=torch.float64)
    return _with_zero(logs.exp())


def _with_zero(body: Tensor) -> Tensor:
    return torch.cat([body, body.new_zeros(1)]).to(torch.float32)
