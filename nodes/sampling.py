"""KSampler and KSampler Advanced: a model, two prompts and a latent in, a latent out.

Both keep the latent's noise mask on their output (as ComfyUI does), so a second pass over a
masked latent stays masked.
"""

from __future__ import annotations

from latentloom.api import (
    MAX_SEED,
    SAMPLERS,
    SCHEDULES,
    Conditioning,
    DiffusionModel,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    boolean_input,
    enum_input,
    float_input,
    int_input,
    ksampler_advanced_cost,
    ksampler_cost,
    sample,
    sample_advanced,
    socket,
    step_callback,
)


def ksampler(
    ctx: NodeContext,
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    latent: Latent,
    seed: int,
    steps: int,
    cfg: float,
    sampler: str,
    scheduler: str,
    denoise: float,
) -> dict[str, object]:
    samples = sample(
        model,
        positive,
        negative,
        latent.samples,
        seed=seed,
        steps=steps,
        cfg=cfg,
        sampler=sampler,
        scheduler=scheduler,
        denoise=denoise,
        noise_mask=latent.noise_mask,
        callback=step_callback(ctx, model.family.name),
        device=ctx.device,
    )
    return {"latent": Latent(samples, model.family, latent.noise_mask)}


def ksampler_advanced(
    ctx: NodeContext,
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    latent: Latent,
    add_noise: bool,
    seed: int,
    steps: int,
    cfg: float,
    sampler: str,
    scheduler: str,
    start_at_step: int,
    end_at_step: int,
    return_with_leftover_noise: bool,
) -> dict[str, object]:
    samples = sample_advanced(
        model,
        positive,
        negative,
        latent.samples,
        add_noise=add_noise,
        seed=seed,
        steps=steps,
        cfg=cfg,
        sampler=sampler,
        scheduler=scheduler,
        start_at_step=start_at_step,
        end_at_step=end_at_step,
        return_with_leftover_noise=return_with_leftover_noise,
        noise_mask=latent.noise_mask,
        callback=step_callback(ctx, model.family.name),
        device=ctx.device,
    )
    return {"latent": Latent(samples, model.family, latent.noise_mask)}


NODES = [
    NodeSpec(
        id="sampling.ksampler",
        display_name="KSampler",
        aliases=("KSampler",),
        category="sampling",
        description="Denoises a latent with the model, guided by positive and negative prompts. "
        "Follows ComfyUI's conventions, so the same checkpoint, seed and settings give "
        "ComfyUI's picture: the starting noise is drawn on the CPU from the seed (the same on "
        "every device); ancestral samplers and lcm draw their per-step noise on the sampling "
        "device, as ComfyUI does, so their pictures differ between CPU and GPU. A latent with a "
        "noise mask changes only where the mask is 1; the rest stays the input exactly.",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("positive", SocketType.CONDITIONING),
            socket("negative", SocketType.CONDITIONING),
            socket("latent", SocketType.LATENT),
            int_input("seed", 0, min=0, max=MAX_SEED),
            int_input("steps", 20, min=1, max=1000),
            float_input("cfg", 7.0, min=0.0, max=100.0, step=0.1),
            enum_input("sampler", tuple(SAMPLERS), "euler"),
            enum_input("scheduler", tuple(SCHEDULES), "normal"),
            float_input("denoise", 1.0, min=0.0, max=1.0),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=ksampler,
        cost=ksampler_cost,
        # 2: ComfyUI's start scaling, per-step noise, dropped penultimate sigma and UniPC end.
        # 3: keeps and honours the latent's noise mask.
        version=3,
    ),
    NodeSpec(
        id="sampling.ksampler_advanced",
        display_name="KSampler (Advanced)",
        aliases=("KSamplerAdvanced", "KSampler (Advanced)"),
        category="sampling",
        description="Runs only steps start_at_step..end_at_step of a steps-step schedule, so "
        "two of them split one sampling run: base then refiner, or a second model finishing "
        "the last steps. The first adds noise and returns its leftover noise; the second adds "
        "none and starts where the first ended. Deterministic samplers (euler, heun, dpm_2) "
        "give exactly one KSampler's picture; multistep ones (lms, dpmpp_2m, uni_pc) restart "
        "their history and ancestral ones their noise at the split, as in ComfyUI.",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("positive", SocketType.CONDITIONING),
            socket("negative", SocketType.CONDITIONING),
            socket("latent", SocketType.LATENT),
            boolean_input(
                "add_noise",
                True,
                tooltip="Start from the latent plus the seed's noise; off for a second pass "
                "over a latent that still carries its noise.",
            ),
            int_input("seed", 0, min=0, max=MAX_SEED),
            int_input("steps", 20, min=1, max=1000),
            float_input("cfg", 8.0, min=0.0, max=100.0, step=0.1),
            enum_input("sampler", tuple(SAMPLERS), "euler"),
            enum_input("scheduler", tuple(SCHEDULES), "normal"),
            int_input("start_at_step", 0, min=0, max=10000),
            int_input("end_at_step", 10000, min=0, max=10000),
            boolean_input(
                "return_with_leftover_noise",
                False,
                tooltip="End at the sigma of end_at_step instead of denoising completely, "
                "for a second sampler to continue.",
            ),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=ksampler_advanced,
        cost=ksampler_advanced_cost,
    ),
]
