"""The custom-sampling set: sampling taken apart into schedule, noise, sampler and guider.

The schedulers and sigma nodes (nodes/sigmas.py) make SIGMAS; Random/Disable Noise make NOISE,
Sampler Select a SAMPLER, the guiders a GUIDER, and Sampler Custom (Advanced) runs them on a
latent through the same code as KSampler: with Basic Scheduler, Sampler Select and cfg it
gives KSampler's picture, except for the samplers KSampler runs on a schedule with its
penultimate sigma dropped (dpm_2, dpm_2_ancestral, uni_pc): Sampler Select keeps the schedule
it is given, as ComfyUI's KSamplerSelect does.
"""

from __future__ import annotations

from torch import Tensor

from latentloom.api import (
    MAX_SEED,
    SAMPLERS,
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
    boolean_input,
    enum_input,
    float_input,
    int_input,
    run_sampling,
    sampler_custom_cost,
    socket,
    step_callback,
)


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


SAMPLED_OUT = (Output("output", SocketType.LATENT), Output("denoised_output", SocketType.LATENT))


NODES = [
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
