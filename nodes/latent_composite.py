"""Latent Composite and Latent Composite Masked: one latent pasted onto another.

They follow ComfyUI's nodes of the same names: positions are pixels on the latent grid
(multiples of 8), the pasted latent is cut where it leaves the destination, and its batch is
cycled or cut to the destination's. Latent Composite's `feather` weights the pasted region by
a linear ramp from each edge that lies inside the destination (an edge on the border stays
hard), the ramps of two sides multiplying in the corners, as ComfyUI's do. A position where
nothing would show is refused rather than moved. Both keep the destination's noise mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentloom.api import (
    MAX_SIDE,
    SD15,
    Input,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    boolean_input,
    int_input,
    repeat_to_batch,
    socket,
)


def _same_channels(first: torch.Tensor, second: torch.Tensor, name: str) -> None:
    if first.shape[1] != second.shape[1]:
        raise ValueError(
            f"input '{name}' has {second.shape[1]} latent channels, the other latent "
            f"{first.shape[1]}; they come from different model families"
        )


def _downscale(latent: Latent) -> int:
    return (latent.family or SD15).downscale


def _inside(position: int, cells: int, downscale: int, name: str, side: str) -> int:
    """A pixel position as a latent cell; refused when nothing pasted there would show."""
    cell = position // downscale
    if cell >= cells:
        raise ValueError(
            f"input '{name}': {position} is at or past the destination's {side} of "
            f"{cells * downscale} px, so nothing would be pasted; the most is "
            f"{(cells - 1) * downscale}"
        )
    return cell


def _ramp(length: int, feather: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """Weights along one side of the pasted region: rising over `feather` cells from each
    edge that lies inside the destination (an edge on the border stays hard)."""
    index = torch.arange(length, dtype=torch.float32)
    weight = torch.ones(length)
    if at_start:
        weight = weight * ((index + 1) / feather).clamp(max=1.0)
    if at_end:
        weight = weight * ((length - index) / feather).clamp(max=1.0)
    return weight


def latent_composite(
    ctx: NodeContext, samples_to: Latent, samples_from: Latent, x: int, y: int, feather: int
) -> dict[str, object]:
    destination, source = samples_to.samples, samples_from.samples
    _same_channels(destination, source, "samples_from")
    downscale = _downscale(samples_to)
    height, width = destination.shape[-2:]
    left = _inside(x, width, downscale, "x", "width")
    top = _inside(y, height, downscale, "y", "height")
    source = repeat_to_batch(source, destination.shape[0])[..., : height - top, : width - left]
    rows, columns = source.shape[-2:]
    out = destination.clone()
    region = (..., slice(top, top + rows), slice(left, left + columns))
    cells = feather // downscale
    if cells == 0:
        out[region] = source
    else:
        vertical = _ramp(rows, cells, top > 0, top + rows < height)
        horizontal = _ramp(columns, cells, left > 0, left + columns < width)
        weight = vertical[:, None] * horizontal[None, :]
        out[region] = source * weight + destination[region] * (1 - weight)
    return {"latent": Latent(out, samples_to.family, samples_to.noise_mask)}


def latent_composite_masked(
    ctx: NodeContext,
    destination: Latent,
    source: Latent,
    x: int,
    y: int,
    resize_source: bool,
    mask: torch.Tensor | None,
) -> dict[str, object]:
    target, pasted = destination.samples, source.samples
    _same_channels(target, pasted, "source")
    downscale = _downscale(destination)
    height, width = target.shape[-2:]
    left = _inside(x, width, downscale, "x", "width")
    top = _inside(y, height, downscale, "y", "height")
    if resize_source:
        pasted = F.interpolate(pasted, size=(height, width), mode="bilinear", align_corners=False)
    pasted = repeat_to_batch(pasted, target.shape[0])
    rows, columns = min(pasted.shape[-2], height - top), min(pasted.shape[-1], width - left)
    out = target.clone()
    region = (..., slice(top, top + rows), slice(left, left + columns))
    visible = pasted[..., :rows, :columns]
    if mask is None:
        out[region] = visible
    else:
        # The mask covers the source: resized to it, then cut where the source is cut.
        planes = mask.reshape(-1, 1, *mask.shape[-2:]).float()
        weight = F.interpolate(planes, size=pasted.shape[-2:], mode="bilinear", align_corners=False)
        weight = repeat_to_batch(weight, pasted.shape[0])[..., :rows, :columns]
        out[region] = visible * weight + target[region] * (1 - weight)
    return {"latent": Latent(out, destination.family, destination.noise_mask)}


def position_input(name: str) -> Input:
    """A pixel offset on the latent grid: a multiple of 8, as in ComfyUI."""
    return int_input(name, 0, min=0, max=MAX_SIDE, step=8)


_LATENT_OUT = (Output("latent", SocketType.LATENT),)


NODES = [
    NodeSpec(
        id="latent.composite",
        display_name="Latent Composite",
        aliases=("LatentComposite",),
        category="latent",
        description="Pastes samples_from onto samples_to at (x, y) pixels; what falls outside is "
        "cut. feather blends the pasted edges that lie inside samples_to linearly over that many "
        "pixels. Keeps samples_to's noise mask.",
        inputs=(
            socket("samples_to", SocketType.LATENT),
            socket("samples_from", SocketType.LATENT),
            position_input("x"),
            position_input("y"),
            int_input("feather", 0, min=0, max=MAX_SIDE, step=8),
        ),
        outputs=_LATENT_OUT,
        function=latent_composite,
    ),
    NodeSpec(
        id="latent.composite_masked",
        display_name="Latent Composite Masked",
        aliases=("LatentCompositeMasked",),
        category="latent",
        description="Pastes source onto destination at (x, y) pixels, through the mask if one "
        "is connected (resized to the source; 1 = source, 0 = destination). resize_source "
        "first stretches the source to the destination's size. Keeps destination's noise mask.",
        inputs=(
            socket("destination", SocketType.LATENT),
            socket("source", SocketType.LATENT),
            position_input("x"),
            position_input("y"),
            boolean_input("resize_source", False),
            socket("mask", SocketType.MASK, optional=True),
        ),
        outputs=_LATENT_OUT,
        function=latent_composite_masked,
    ),
]
