"""The sampler node."""

from __future__ import annotations

import torch

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
    enum_input,
    float_input,
    int_input,
    ksampler_cost,
    sample,
    socket,
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
    def on_step(step: int, total: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
        ctx.check_cancelled()
        ctx.progress(step + 1, total)
        ctx.preview(step + 1, denoised, model.family.name)

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
        callback=on_step,
        device=ctx.device,
    )
    return {"latent": Latent(samples.float().cpu(), model.family)}


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
        "device, as ComfyUI does, so their pictures differ between CPU and GPU.",
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
        version=2,
    ),
]
