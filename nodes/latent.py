"""Latent tricks: empty latents, interpolation (morphs), added noise, upscaling.

Each spec declares its cost (`graph/cost.py`): the size of the latent it makes, so the budget
can weigh the job before it runs. The cost hooks also hold the bounds one input's range cannot
say: Interpolation refuses more than MAX_FRAMES ratios, Add Noise a strength above 1 (its
`amount` goes to 100 for mode 'sigma'). Image sides are multiples of 8: validation refuses
others (the INT step), so no size is silently floored to the latent grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentloom.api import (
    MAX_BATCH,
    MAX_FRAMES,
    MAX_SIDE,
    SD15,
    Batch,
    Cost,
    CostQuery,
    DiffusionModel,
    Input,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SocketType,
    enum_input,
    float_input,
    int_input,
    interpolate,
    mix_noise,
    seeded_noise,
    socket,
)

UPSCALE_METHODS = ("nearest-exact", "bilinear", "bicubic", "area")


def empty_latent(
    ctx: NodeContext, width: int, height: int, batch: int, model: DiffusionModel | None
) -> dict[str, object]:
    family = model.family if model is not None else None
    spec = family or SD15  # all supported families share 4 channels at 1/8 scale
    shape = (batch, spec.latent_channels, height // spec.downscale, width // spec.downscale)
    return {"latent": Latent(torch.zeros(shape), family)}


def latent_interpolation(
    ctx: NodeContext, a: Latent, b: Latent, ratio: float | list[float], mode: str
) -> dict[str, object]:
    ratios = ratio if isinstance(ratio, list) else [ratio]
    if len(ratios) > MAX_FRAMES:
        raise ValueError(_too_many_frames(len(ratios)))
    if a.samples.shape != b.samples.shape:
        raise ValueError(
            f"latents a {tuple(a.samples.shape)} and b {tuple(b.samples.shape)} differ in shape"
        )
    frames = [interpolate(a.samples, b.samples, r, mode) for r in ratios]
    return {"latent": Latent(torch.cat(frames), a.family or b.family)}


def add_noise(
    ctx: NodeContext, latent: Latent, seed: int, mode: str, amount: float
) -> dict[str, object]:
    noise = seeded_noise(seed, latent.samples.shape)
    return {"latent": Latent(mix_noise(latent.samples, noise, mode, amount), latent.family)}


def latent_upscale(
    ctx: NodeContext, latent: Latent, width: int, height: int, method: str
) -> dict[str, object]:
    downscale = (latent.family or SD15).downscale
    size = (height // downscale, width // downscale)
    align = {"align_corners": False} if method in ("bilinear", "bicubic") else {}
    samples = F.interpolate(latent.samples, size=size, mode=method, **align)
    return {"latent": Latent(samples, latent.family)}


def _strength_above_one(amount: float) -> str:
    return (
        f"strength {amount!r} is above 1; mode 'strength' blends toward noise and takes 0 to 1 "
        "(1 is pure noise); for more noise than that use mode 'sigma'"
    )


def _too_many_frames(count: int) -> str:
    return f"{count:,} ratios would make {count:,} frames; the most is {MAX_FRAMES:,}"


def empty_latent_cost(query: CostQuery) -> Cost:
    width, height, batch = query.integer("width"), query.integer("height"), query.integer("batch")
    if width is None or height is None or batch is None:
        return Cost()
    return Cost(outputs={"latent": Batch(width, height, batch, query.node_id)})


def latent_interpolation_cost(query: CostQuery) -> Cost:
    ratio = query.literals.get("ratio")
    frames = len(ratio) if isinstance(ratio, list) else 1
    if frames > MAX_FRAMES:
        return Cost(refusals=(Refusal("ratio", _too_many_frames(frames)),))
    a = query.batch("a")
    if a is None:
        return Cost()
    out = Batch(a.width, a.height, a.count * frames, query.node_id)
    # The frames are made one by one, then joined: briefly held twice.
    return Cost(outputs={"latent": out}, host_working_bytes=out.latent_bytes)


def add_noise_cost(query: CostQuery) -> Cost:
    amount = query.number("amount")
    if query.literals.get("mode") == "strength" and amount is not None and amount > 1:
        return Cost(refusals=(Refusal("amount", _strength_above_one(amount)),))
    latent = query.batch("latent")
    if latent is None:
        return Cost()
    return Cost(outputs={"latent": latent}, host_working_bytes=latent.latent_bytes)  # the noise


def latent_upscale_cost(query: CostQuery) -> Cost:
    latent = query.batch("latent")
    width, height = query.integer("width"), query.integer("height")
    if latent is None or width is None or height is None:
        return Cost()
    return Cost(outputs={"latent": Batch(width, height, latent.count, query.node_id)})


def side_input(name: str, default: int) -> Input:
    """An image side in pixels: a multiple of 8 (the latent scale), bounded."""
    return int_input(name, default, min=64, max=MAX_SIDE, step=8)


NODES = [
    NodeSpec(
        id="latent.empty",
        display_name="Empty Latent",
        aliases=("EmptyLatentImage", "Empty Latent Image"),
        category="latent",
        description="A batch of zero latents of the given image size. Connect a model to size it for "
        "that model's family (all supported families use 4 channels at 1/8 scale).",
        inputs=(
            side_input("width", 512),
            side_input("height", 512),
            int_input("batch", 1, min=1, max=MAX_BATCH),
            socket("model", SocketType.MODEL, optional=True),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=empty_latent,
        cost=empty_latent_cost,
    ),
    NodeSpec(
        id="latent.interpolate",
        display_name="Latent Interpolation",
        aliases=("LatentBlend", "Latent Blend"),
        category="latent",
        description="Blends latent a into b. With a list of ratios it yields one frame per ratio, a morph.",
        inputs=(
            socket("a", SocketType.LATENT),
            socket("b", SocketType.LATENT),
            float_input("ratio", 0.5, min=0.0, max=1.0, accepts_list=True),
            enum_input("mode", ("slerp", "lerp")),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=latent_interpolation,
        cost=latent_interpolation_cost,
    ),
    NodeSpec(
        id="latent.add_noise",
        display_name="Add Noise",
        category="latent",
        description="Adds seeded Gaussian noise: 'strength' blends toward noise keeping the variance "
        "(sqrt(1-s^2)*x + s*noise); 'sigma' adds noise of that standard deviation (x + sigma*noise).",
        inputs=(
            socket("latent", SocketType.LATENT),
            int_input("seed", 0, min=0, max=2**64 - 1),
            enum_input("mode", ("strength", "sigma")),
            float_input("amount", 0.3, min=0.0, max=100.0),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=add_noise,
        cost=add_noise_cost,
    ),
    NodeSpec(
        id="latent.upscale",
        display_name="Latent Upscale",
        aliases=("LatentUpscale", "Upscale Latent"),
        category="latent",
        inputs=(
            socket("latent", SocketType.LATENT),
            side_input("width", 1024),
            side_input("height", 1024),
            enum_input("method", UPSCALE_METHODS),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=latent_upscale,
        cost=latent_upscale_cost,
    ),
]
