"""The custom-sampling set: sampling taken apart into schedule, noise, sampler and guider.

Schedulers make SIGMAS (and report them, so the editor plots the curve), the sigma nodes cut
and flip them, Random/Disable Noise make NOISE, Sampler Select a SAMPLER, the guiders a GUIDER,
and Sampler Custom (Advanced) runs them on a latent through the same code as KSampler: with
Basic Scheduler, Sampler Select and cfg it gives KSampler's picture, except for the samplers
KSampler runs on a schedule with its penultimate sigma dropped (dpm_2, dpm_2_ancestral,
uni_pc): Sampler Select keeps the schedule it is given, as ComfyUI's KSamplerSelect does.
"""

from __future__ import annotations

from torch import Tensor

from latentloom.api import (
    MAX_SEED,
    SAMPLERS,
    SCHEDULES,
    Conditioning,
    DiffusionModel,
    DisabledNoise,
    Guider,
    Input,
    Latent,
    NodeContext,
    NodeSpec,
    Noise,
    Output,
    RandomNoise,
    SamplerChoice,
    SocketType,
    basic_scheduler_sigmas,
    boolean_input,
    enum_input,
    exponential_sigmas,
    flip_sigmas,
    flip_sigmas_cost,
    float_input,
    int_input,
    karras_sigmas,
    run_sampling,
    sampler_custom_cost,
    scheduler_cost,
    sigmas_report,
    socket,
    split_sigmas,
    split_sigmas_by_denoise,
    split_sigmas_cost,
    split_sigmas_denoise_cost,
    step_callback,
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


def sampler_select(ctx: NodeContext, sampler: str) -> dict[str, object]:
    return {"sampler": SamplerChoice(sampler)}


def cfg_guider(
    ctx: NodeContext,
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    cfg: float,
) -> dict[str, object]:
    return {"guider": Guider(model, positive, negative, cfg)}


def basic_guider(
    ctx: NodeContext, model: DiffusionModel, conditioning: Conditioning
) -> dict[str, object]:
    return {"guider": Guider.basic(model, conditioning)}


def random_noise(ctx: NodeContext, seed: int) -> dict[str, object]:
    return {"noise": RandomNoise(seed)}


def disable_noise(ctx: NodeContext) -> dict[str, object]:
    return {"noise": DisabledNoise()}


def sampler_custom(
    ctx: NodeContext,
    model: DiffusionModel,
    add_noise: bool,
    seed: int,
    cfg: float,
    positive: Conditioning,
    negative: Conditioning,
    sampler: SamplerChoice,
    sigmas: Tensor,
    latent: Latent,
) -> dict[str, object]:
    # ComfyUI passes noise_seed as the per-step seed even when no start noise is added.
    noise: Noise = RandomNoise(seed) if add_noise else DisabledNoise(seed)
    return _run(ctx, noise, Guider(model, positive, negative, cfg), sampler, sigmas, latent)


def sampler_custom_advanced(
    ctx: NodeContext,
    noise: Noise,
    guider: Guider,
    sampler: SamplerChoice,
    sigmas: Tensor,
    latent: Latent,
) -> dict[str, object]:
    return _run(ctx, noise, guider, sampler, sigmas, latent)


def _run(
    ctx: NodeContext,
    noise: Noise,
    guider: Guider,
    sampler: SamplerChoice,
    sigmas: Tensor,
    latent: Latent,
) -> dict[str, object]:
    family = guider.model.family
    result = run_sampling(
        guider,
        sampler,
        sigmas,
        latent.samples,
        noise,
        noise_mask=latent.noise_mask,
        callback=step_callback(ctx, family.name),
        device=ctx.device,
    )
    return {
        "output": Latent(result.samples, family, latent.noise_mask),
        "denoised_output": Latent(result.denoised, family, latent.noise_mask),
    }


def _seed() -> Input:
    return int_input("seed", 0, min=0, max=MAX_SEED)


def _steps() -> Input:
    return int_input("steps", 20, min=1, max=1000)


def _sigma_bounds() -> tuple[Input, Input]:
    return (
        float_input("sigma_max", SD_SIGMA_MAX, min=0.0, max=5000.0, step=0.01),
        float_input("sigma_min", SD_SIGMA_MIN, min=0.0, max=5000.0, step=0.01),
    )


SIGMAS_OUT = (Output("sigmas", SocketType.SIGMAS),)
SPLIT_OUT = (Output("high_sigmas", SocketType.SIGMAS), Output("low_sigmas", SocketType.SIGMAS))
SAMPLED_OUT = (Output("output", SocketType.LATENT), Output("denoised_output", SocketType.LATENT))


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
    NodeSpec(
        id="sampling.sampler_select",
        display_name="Sampler Select",
        aliases=("KSamplerSelect", "KSampler Select"),
        category="sampling/custom_sampling/samplers",
        description="A sampler by name, for Sampler Custom. It runs on the sigmas it is given.",
        inputs=(enum_input("sampler", tuple(SAMPLERS), "euler"),),
        outputs=(Output("sampler", SocketType.SAMPLER),),
        function=sampler_select,
    ),
    NodeSpec(
        id="sampling.cfg_guider",
        display_name="CFG Guider",
        aliases=("CFGGuider",),
        category="sampling/custom_sampling/guiders",
        description="The model guided toward positive and away from negative with scale cfg "
        "(cfg 1: positive alone, one model call per step).",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("positive", SocketType.CONDITIONING),
            socket("negative", SocketType.CONDITIONING),
            float_input("cfg", 8.0, min=0.0, max=100.0, step=0.1),
        ),
        outputs=(Output("guider", SocketType.GUIDER),),
        function=cfg_guider,
    ),
    NodeSpec(
        id="sampling.basic_guider",
        display_name="Basic Guider",
        aliases=("BasicGuider",),
        category="sampling/custom_sampling/guiders",
        description="The model with one conditioning and no guidance (distilled models, or cfg 1).",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("conditioning", SocketType.CONDITIONING),
        ),
        outputs=(Output("guider", SocketType.GUIDER),),
        function=basic_guider,
    ),
    NodeSpec(
        id="sampling.random_noise",
        display_name="Random Noise",
        aliases=("RandomNoise",),
        category="sampling/custom_sampling/noise",
        description="Start noise from a seed: the same CPU noise KSampler draws for that seed; "
        "the seed also drives ancestral and SDE samplers' per-step noise.",
        inputs=(_seed(),),
        outputs=(Output("noise", SocketType.NOISE),),
        function=random_noise,
    ),
    NodeSpec(
        id="sampling.disable_noise",
        display_name="Disable Noise",
        aliases=("DisableNoise",),
        category="sampling/custom_sampling/noise",
        description="No start noise: sample the latent as it is (a second pass). Per-step noise "
        "comes from seed 0.",
        inputs=(),
        outputs=(Output("noise", SocketType.NOISE),),
        function=disable_noise,
    ),
    NodeSpec(
        id="sampling.sampler_custom",
        display_name="Sampler Custom",
        aliases=("SamplerCustom",),
        category="sampling/custom_sampling",
        description="Samples a latent down the given sigmas with the given sampler and cfg "
        "guidance. output is the result, denoised_output the last step's prediction of the "
        "clean latent (useful when the sigmas stop above 0).",
        inputs=(
            socket("model", SocketType.MODEL),
            boolean_input("add_noise", True),
            _seed(),
            float_input("cfg", 8.0, min=0.0, max=100.0, step=0.1),
            socket("positive", SocketType.CONDITIONING),
            socket("negative", SocketType.CONDITIONING),
            socket("sampler", SocketType.SAMPLER),
            socket("sigmas", SocketType.SIGMAS),
            socket("latent", SocketType.LATENT),
        ),
        outputs=SAMPLED_OUT,
        function=sampler_custom,
        cost=sampler_custom_cost,
    ),
    NodeSpec(
        id="sampling.sampler_custom_advanced",
        display_name="Sampler Custom Advanced",
        aliases=("SamplerCustomAdvanced",),
        category="sampling/custom_sampling",
        description="Samples a latent from its parts: start noise, guider, sampler and sigmas. "
        "output is the result, denoised_output the last step's prediction of the clean latent.",
        inputs=(
            socket("noise", SocketType.NOISE),
            socket("guider", SocketType.GUIDER),
            socket("sampler", SocketType.SAMPLER),
            socket("sigmas", SocketType.SIGMAS),
            socket("latent", SocketType.LATENT),
        ),
        outputs=SAMPLED_OUT,
        function=sampler_custom_advanced,
        cost=sampler_custom_cost,
    ),
]
