"""Sigma nodes of the custom-sampling set: schedulers that make SIGMAS, and cuts and flips.

Every node that outputs SIGMAS reports the values (`sigmas_report`), so the editor draws the
curve under the output. The arithmetic lives in the public API's sigma helpers, which follow
ComfyUI's slicing exactly (see their docstrings); these specs only name inputs.
"""

from __future__ import annotations

from torch import Tensor

from latentloom.api import (
    SCHEDULES,
    DiffusionModel,
    Input,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    basic_scheduler_sigmas,
    enum_input,
    exponential_sigmas,
    flip_sigmas,
    flip_sigmas_cost,
    float_input,
    int_input,
    karras_sigmas,
    scheduler_cost,
    sigmas_report,
    socket,
    split_sigmas,
    split_sigmas_by_denoise,
    split_sigmas_cost,
    split_sigmas_denoise_cost,
)

# SD 1.x's training range, ComfyUI's defaults for the explicit-bounds schedulers.
SD_SIGMA_MAX = 14.614642
SD_SIGMA_MIN = 0.0291675

SCHEDULERS = "sampling/custom_sampling/schedulers"
SIGMAS = "sampling/custom_sampling/sigmas"


def basic_scheduler(
    ctx: NodeContext, model: DiffusionModel, scheduler: str, steps: int, denoise: float
) -> dict[str, object]:
    sigmas = basic_scheduler_sigmas(model, scheduler, steps, denoise)
    return {"sigmas": sigmas, "report": sigmas_report(sigmas=sigmas)}


def karras_scheduler(
    ctx: NodeContext, steps: int, sigma_max: float, sigma_min: float, rho: float
) -> dict[str, object]:
    sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho)
    return {"sigmas": sigmas, "report": sigmas_report(sigmas=sigmas)}


def exponential_scheduler(
    ctx: NodeContext, steps: int, sigma_max: float, sigma_min: float
) -> dict[str, object]:
    sigmas = exponential_sigmas(steps, sigma_min, sigma_max)
    return {"sigmas": sigmas, "report": sigmas_report(sigmas=sigmas)}


def split_at_step(ctx: NodeContext, sigmas: Tensor, step: int) -> dict[str, object]:
    high, low = split_sigmas(sigmas, step)
    return _split(high, low)


def split_by_denoise(ctx: NodeContext, sigmas: Tensor, denoise: float) -> dict[str, object]:
    high, low = split_sigmas_by_denoise(sigmas, denoise)
    return _split(high, low)


def _split(high: Tensor, low: Tensor) -> dict[str, object]:
    report = sigmas_report(high_sigmas=high, low_sigmas=low)
    return {"high_sigmas": high, "low_sigmas": low, "report": report}


def flip(ctx: NodeContext, sigmas: Tensor) -> dict[str, object]:
    flipped = flip_sigmas(sigmas)
    return {"sigmas": flipped, "report": sigmas_report(sigmas=flipped)}


def _steps() -> Input:
    return int_input("steps", 20, min=1, max=1000)


def _sigma_bounds() -> tuple[Input, Input]:
    return (
        float_input("sigma_max", SD_SIGMA_MAX, min=0.0, max=5000.0, step=0.01),
        float_input("sigma_min", SD_SIGMA_MIN, min=0.0, max=5000.0, step=0.01),
    )


SIGMAS_OUT = (Output("sigmas", SocketType.SIGMAS),)
SPLIT_OUT = (Output("high_sigmas", SocketType.SIGMAS), Output("low_sigmas", SocketType.SIGMAS))

NODES = [
    NodeSpec(
        id="sampling.basic_scheduler",
        display_name="Basic Scheduler",
        aliases=("BasicScheduler",),
        category=SCHEDULERS,
        description="The model's sigmas for a named schedule: the last steps + 1 of an "
        "int(steps / denoise)-step schedule, ending at 0, as KSampler would use them (except "
        "that no sigma is dropped for dpm_2 or uni_pc). denoise 0 gives no sigmas.",
        inputs=(
            socket("model", SocketType.MODEL),
            enum_input("scheduler", tuple(SCHEDULES), "normal"),
            _steps(),
            float_input("denoise", 1.0, min=0.0, max=1.0),
        ),
        outputs=SIGMAS_OUT,
        function=basic_scheduler,
        cost=scheduler_cost,
    ),
    NodeSpec(
        id="sampling.karras_scheduler",
        display_name="Karras Scheduler",
        aliases=("KarrasScheduler",),
        category=SCHEDULERS,
        description="Karras et al.'s schedule between explicit sigma bounds (defaults: SD's "
        "training range), uniform in sigma^(1/rho), then 0.",
        inputs=(
            _steps(),
            *_sigma_bounds(),
            float_input("rho", 7.0, min=0.01, max=100.0, step=0.01),
        ),
        outputs=SIGMAS_OUT,
        function=karras_scheduler,
        cost=scheduler_cost,
    ),
    NodeSpec(
        id="sampling.exponential_scheduler",
        display_name="Exponential Scheduler",
        aliases=("ExponentialScheduler",),
        category=SCHEDULERS,
        description="Sigmas uniform in log-sigma between explicit bounds, then 0.",
        inputs=(_steps(), *_sigma_bounds()),
        outputs=SIGMAS_OUT,
        function=exponential_scheduler,
        cost=scheduler_cost,
    ),
    NodeSpec(
        id="sampling.split_sigmas",
        display_name="Split Sigmas",
        aliases=("SplitSigmas",),
        category=SIGMAS,
        description="Cuts a schedule at a step: high_sigmas are steps 0..step (sigmas[:step + "
        "1]), low_sigmas the rest (sigmas[step:]); both hold the sigma at the cut, so two "
        "samplers in a row run the whole schedule.",
        inputs=(
            socket("sigmas", SocketType.SIGMAS),
            int_input("step", 0, min=0, max=10000),
        ),
        outputs=SPLIT_OUT,
        function=split_at_step,
        cost=split_sigmas_cost,
    ),
    NodeSpec(
        id="sampling.split_sigmas_denoise",
        display_name="Split Sigmas Denoise",
        aliases=("SplitSigmasDenoise",),
        category=SIGMAS,
        description="Cuts a schedule so low_sigmas are its last round(steps x denoise) steps "
        "and high_sigmas the steps before them.",
        inputs=(
            socket("sigmas", SocketType.SIGMAS),
            float_input("denoise", 1.0, min=0.0, max=1.0),
        ),
        outputs=SPLIT_OUT,
        function=split_by_denoise,
        cost=split_sigmas_denoise_cost,
    ),
    NodeSpec(
        id="sampling.flip_sigmas",
        display_name="Flip Sigmas",
        aliases=("FlipSigmas",),
        category=SIGMAS,
        description="Reverses a schedule (noise a picture back up, 'unsampling'); a leading 0 "
        "becomes 0.0001.",
        inputs=(socket("sigmas", SocketType.SIGMAS),),
        outputs=SIGMAS_OUT,
        function=flip,
        cost=flip_sigmas_cost,
    ),
]
