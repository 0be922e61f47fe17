"""Sigma schedules: which noise levels a sampler visits, from the model's training schedule.

Each `sigmas_<name>(schedule, n)` is a small pure function returning a float32 tensor of n + 1
descending sigmas whose last entry is 0 (the clean image). Math is done in float64 and cast
once at the end, as diffusers does, so schedules that coincide with a diffusers option match it
to the last bit. The names and behaviours follow ComfyUI's schedulers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from latentloom.sampling.align_your_steps import sigmas_align_your_steps
from latentloom.sampling.beta_distribution import beta_ppf
from latentloom.sampling.errors import UnknownNameError
from latentloom.sampling.model_sampling import NoiseSchedule
from latentloom.sampling.schedules_extra import sigmas_kl_optimal, sigmas_linear_quadratic

ScheduleFn = Callable[[NoiseSchedule, int], Tensor]


def _finish(sigmas: Tensor | list[float]) -> Tensor:
    """Append the final 0 and cast to float32."""
    body = torch.as_tensor(sigmas, dtype=torch.float64)
    return torch.cat([body, body.new_zeros(1)]).to(torch.float32)


def _check_steps(n: int) -> None:
    if n < 1:
        raise ValueError(f"a schedule needs at least 1 step, got {n}")


def sigmas_karras(schedule: NoiseSchedule, n: int, *, rho: float = 7.0) -> Tensor:
    """Karras et al. 2022 (EDM): uniform steps in sigma^(1/rho) between sigma_max and sigma_min."""
    _check_steps(n)
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    min_inv_rho = schedule.sigma_min ** (1 / rho)
    max_inv_rho = schedule.sigma_max ** (1 / rho)
    return _finish((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def sigmas_exponential(schedule: NoiseSchedule, n: int) -> Tensor:
    """Uniform steps in log-sigma between sigma_max and sigma_min (k-diffusion)."""
    _check_steps(n)
    log_sigmas = torch.linspace(
        math.log(schedule.sigma_max), math.log(schedule.sigma_min), n, dtype=torch.float64
    )
    return _finish(log_sigmas.exp())


def sigmas_normal(schedule: NoiseSchedule, n: int) -> Tensor:
    """Uniform timesteps from the last to the first training step, log-sigma interpolated."""
    _check_steps(n)
    # diffusers' "linspace" spacing picks the same timesteps but interpolates sigma linearly;
    # ComfyUI (and we) interpolate log-sigma, which differs slightly between integer steps.
    t_max = schedule.sigma_to_t(schedule.sigma_max)
    t_min = schedule.sigma_to_t(schedule.sigma_min)
    timesteps = torch.linspace(float(t_max), float(t_min), n, dtype=torch.float64)
    return _finish(schedule.t_to_sigma(timesteps))


def sigmas_sgm_uniform(schedule: NoiseSchedule, n: int) -> Tensor:
    """Like "normal" but over n + 1 points with the last dropped (SGM/SDXL "uniform" spacing)."""
    _check_steps(n)
    t_max = schedule.sigma_to_t(schedule.sigma_max)
    t_min = schedule.sigma_to_t(schedule.sigma_min)
    timesteps = torch.linspace(float(t_max), float(t_min), n + 1, dtype=torch.float64)[:-1]
    return _finish(schedule.t_to_sigma(timesteps))


def sigmas_simple(schedule: NoiseSchedule, n: int) -> Tensor:
    """Every (T/n)-th training sigma counted down from the last one (ComfyUI "simple").

    Past n = T the stride falls below one step and would repeat sigmas; a zero-length step
    divides by zero in several samplers, so a repeat is dropped (as "beta" does) and such a
    schedule has fewer than n + 1 entries.
    """
    _check_steps(n)
    stride = schedule.sigmas.numel() / n
    indices = [schedule.sigmas.numel() - 1 - int(i * stride) for i in range(n)]
    return _finish(schedule.sigmas[list(dict.fromkeys(indices))])


def sigmas_ddim_uniform(schedule: NoiseSchedule, n: int) -> Tensor:
    """The DDIM paper's uniform timesteps 1, 1 + T//n, ... below T, as ComfyUI steps them."""
    _check_steps(n)
    # Every stride-th training step from 1 while it stays below T, so when T % n is large there
    # are more than n of them (31 steps for n = 30 on SD's T = 1000), exactly as ComfyUI runs.
    # diffusers' "leading" spacing with steps_offset=1 takes the first n of the same timesteps.
    stride = max(schedule.sigmas.numel() // n, 1)
    indices = list(range(1, schedule.sigmas.numel(), stride))
    return _finish(schedule.sigmas[indices[::-1]])


def sigmas_beta(
    schedule: NoiseSchedule, n: int, *, alpha: float = 0.6, beta: float = 0.6
) -> Tensor:
    """Lee et al. 2024, "Beta Sampling is All You Need": timesteps at Beta(0.6, 0.6) quantiles."""
    _check_steps(n)
    # As in ComfyUI: quantiles of 1, 1 - 1/n, ..., 1/n are rounded to training timesteps, and a
    # timestep repeated by rounding is dropped (for SD's 1000 timesteps, from n = 139 on), so a
    # long schedule may have fewer than n + 1 entries. diffusers' `use_beta_sigmas` differs: it
    # spaces sigma itself, not the timestep, by the quantiles.
    last = schedule.sigmas.numel() - 1
    indices: list[int] = []
    for i in range(n):
        t = round(beta_ppf(1.0 - i / n, alpha, beta) * last)
        if not indices or indices[-1] != t:
            indices.append(t)
    return _finish(schedule.sigmas[indices])


SCHEDULES: dict[str, ScheduleFn] = {
    "normal": sigmas_normal,
    "karras": sigmas_karras,
    "exponential": sigmas_exponential,
    "sgm_uniform": sigmas_sgm_uniform,
    "simple": sigmas_simple,
    "ddim_uniform": sigmas_ddim_uniform,
    "beta": sigmas_beta,
    "linear_quadratic": sigmas_linear_quadratic,
    "kl_optimal": sigmas_kl_optimal,
    "align_your_steps": sigmas_align_your_steps,
}


class FamilyScheduleFn(Protocol):
    """A schedule tuned per model family; `family` is a family name such as "sdxl"."""

    def __call__(
        self, schedule: NoiseSchedule, n: int, /, *, family: str | None = None
    ) -> Tensor: ...


# Schedules tuned per model family: compute_sigmas hands them `family=`.
FAMILY_SCHEDULES: dict[str, FamilyScheduleFn] = {"align_your_steps": sigmas_align_your_steps}

# Schedules whose ComfyUI node applies denoise d by running round(steps * d) steps, the tail of
# the steps-step schedule (AlignYourStepsScheduler), instead of KSampler's rule below.
SHORTENED_BY_DENOISE: frozenset[str] = frozenset({"align_your_steps"})


FULL_DENOISE = 0.9999  # ComfyUI treats any denoise above this as a full schedule


def partial_sigmas(
    schedule_fn: ScheduleFn,
    schedule: NoiseSchedule,
    steps: int,
    denoise: float,
    *,
    discard_penultimate: bool = False,
    shorten: bool = False,
) -> Tensor:
    """The last steps + 1 sigmas of a steps/denoise-step schedule (img2img; ComfyUI's rule).

    denoise = 1 is the full schedule; denoise = 0.5 with 20 steps runs the quieter half of a
    40-step schedule. denoise = 0 means "leave the latent alone": an empty tensor. With
    `discard_penultimate` (see samplers.DISCARD_PENULTIMATE_SAMPLERS) each schedule is computed
    for one step more and its second-to-last sigma dropped, as ComfyUI's KSampler does.
    """
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be between 0 and 1, got {denoise}")
    _check_steps(steps)
    if denoise == 0.0:
        return torch.zeros(0, dtype=torch.float32)
    full = denoise > FULL_DENOISE
    if shorten and not full:
        # Python's round, as ComfyUI's node: halves go to the even neighbour.
        kept = round(steps * denoise)
        whole = partial_sigmas(
            schedule_fn, schedule, steps, 1.0, discard_penultimate=discard_penultimate
        )
        return whole[-(kept + 1) :] if kept > 0 else whole.new_zeros(0)
    total = steps if full else int(steps / denoise)
    if discard_penultimate:
        longer = schedule_fn(schedule, total + 1)
        sigmas = torch.cat([longer[:-2], longer[-1:]])
    else:
        sigmas = schedule_fn(schedule, total)
    # A full schedule is used whole: ddim_uniform may yield more than `steps` steps.
    return sigmas if full else sigmas[-(steps + 1) :]


def schedule_function(scheduler: str, family: str | None = None) -> ScheduleFn:
    """SCHEDULES[scheduler], with `family` bound for the FAMILY_SCHEDULES.

    Unknown names raise UnknownNameError; a family schedule without a family it has data for
    raises a ValueError naming the scheduler when called.
    """
    if scheduler not in SCHEDULES:
        raise UnknownNameError("scheduler", scheduler, tuple(SCHEDULES))
    if scheduler in FAMILY_SCHEDULES:
        return functools.partial(FAMILY_SCHEDULES[scheduler], family=family)
    return SCHEDULES[scheduler]


def compute_sigmas(
    scheduler: str,
    schedule: NoiseSchedule,
    steps: int,
    denoise: float = 1.0,
    *,
    discard_penultimate: bool = False,
    family: str | None = None,
) -> Tensor:
    """The sigmas for a scheduler named in SCHEDULES; unknown names raise UnknownNameError.

    `family` is the model family's name ("sd15", "sd2", "sdxl"); schedules in FAMILY_SCHEDULES
    need it and raise a ValueError naming the scheduler without it.
    """
    return partial_sigmas(
        schedule_function(scheduler, family),
        schedule,
        steps,
        denoise,
        discard_penultimate=discard_penultimate,
        shorten=scheduler in SHORTENED_BY_DENOISE,
    )
