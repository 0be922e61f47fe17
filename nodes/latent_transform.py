"""Latent geometry: crop, flip, rotate and upscale by a factor, as ComfyUI's nodes of those names.

A latent's noise mask moves with it. ComfyUI passes the mask on untouched, so after a flip,
rotation or crop it no longer covers the part of the picture it was painted on; here crop,
flip and rotate apply the same change to the mask (at the mask's own resolution when that is
a whole multiple of the latent's, else after resizing it to the latent's as a sampler would).
Upscale By keeps the mask as it is: a sampler resizes a mask to whatever latent it gets, so
the same region stays covered.

Upscale By offers ComfyUI's `bislerp` besides torch's filters: bilinear positions, but each
pair of neighbouring latent vectors (over the channels) is blended by spherical interpolation
of their directions and linear interpolation of their lengths, first along the width, then
along the height; nearly parallel vectors keep the first, opposite ones blend linearly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentloom.api import (
    MAX_SIDE,
    SD15,
    Batch,
    Cost,
    CostQuery,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SocketType,
    enum_input,
    float_input,
    int_input,
    socket,
)

FLIP_METHODS = ("x-axis: vertically", "y-axis: horizontally")
ROTATIONS = ("none", "90 degrees", "180 degrees", "270 degrees")
UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
LATENT_DOWNSCALE = 8  # what cost estimates assume: every supported family's
PARALLEL = 1 - 1e-5  # cosine above which two latent vectors count as one direction


def _downscale(latent: Latent) -> int:
    return (latent.family or SD15).downscale


def _mask_grid(mask: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, int, int]:
    """The mask and how many of its rows and columns fall on one latent cell."""
    rows, columns = mask.shape[-2:]
    if rows % height == 0 and columns % width == 0:
        return mask, rows // height, columns // width
    planes = mask.reshape(-1, 1, rows, columns).float()
    resized = F.interpolate(planes, size=(height, width), mode="bilinear", align_corners=False)
    return resized.reshape(-1, height, width), 1, 1


def _refused(name: str, message: str) -> ValueError:
    """A run-time refusal; validation names the input itself (the same message, refused earlier
    when the size is known)."""
    return ValueError(f"input '{name}': {message}")


def _past(position: int, side: str, pixels: int, downscale: int) -> str:
    return (
        f"{position} is at or past the latent's {side} of {pixels} px, so "
        f"the crop would be empty; the most is {pixels - downscale}"
    )


def latent_crop(
    ctx: NodeContext, samples: Latent, width: int, height: int, x: int, y: int
) -> dict[str, object]:
    downscale = _downscale(samples)
    rows, columns = samples.samples.shape[-2:]
    left, top = x // downscale, y // downscale
    if left >= columns:
        raise _refused("x", _past(x, "width", columns * downscale, downscale))
    if top >= rows:
        raise _refused("y", _past(y, "height", rows * downscale, downscale))
    # A region reaching past the latent is cut at its edge, as a slice would be.
    right, bottom = min(columns, left + width // downscale), min(rows, top + height // downscale)
    cropped = samples.samples[..., top:bottom, left:right].clone()
    mask = samples.noise_mask
    if mask is not None:
        grid, per_row, per_column = _mask_grid(mask, rows, columns)
        mask = grid[
            ..., top * per_row : bottom * per_row, left * per_column : right * per_column
        ].clone()
    return {"latent": Latent(cropped, samples.family, mask)}


def latent_flip(ctx: NodeContext, samples: Latent, flip_method: str) -> dict[str, object]:
    # "x-axis" mirrors across the horizontal axis: the rows reverse (upside down).
    dims = [-2] if flip_method.startswith("x") else [-1]
    mask = samples.noise_mask
    flipped_mask = None if mask is None else torch.flip(mask, dims=dims)
    return {"latent": Latent(torch.flip(samples.samples, dims=dims), samples.family, flipped_mask)}


def latent_rotate(ctx: NodeContext, samples: Latent, rotation: str) -> dict[str, object]:
    turns = ROTATIONS.index(rotation)
    # From the width axis towards the height axis: clockwise as the picture is seen.
    dims = [-1, -2]
    mask = samples.noise_mask
    turned_mask = None if mask is None else torch.rot90(mask, turns, dims=dims)
    turned = torch.rot90(samples.samples, turns, dims=dims)
    return {"latent": Latent(turned, samples.family, turned_mask)}


def scaled_cells(cells: int, scale_by: float) -> int:
    """Latent cells along one side after scaling, rounded as ComfyUI rounds them."""
    return round(cells * scale_by)


def latent_upscale_by(
    ctx: NodeContext, samples: Latent, upscale_method: str, scale_by: float
) -> dict[str, object]:
    downscale = _downscale(samples)
    rows, columns = samples.samples.shape[-2:]
    height, width = scaled_cells(rows, scale_by), scaled_cells(columns, scale_by)
    problem = _size_problem(width * downscale, height * downscale, scale_by)
    if problem is not None:
        raise _refused("scale_by", problem)
    if upscale_method == "bislerp":
        scaled = bislerp(samples.samples, height, width)
    else:
        align = {"align_corners": False} if upscale_method in ("bilinear", "bicubic") else {}
        scaled = F.interpolate(samples.samples, size=(height, width), mode=upscale_method, **align)
    return {"latent": Latent(scaled, samples.family, samples.noise_mask)}


def _size_problem(width: int, height: int, scale_by: float) -> str | None:
    if min(width, height) < 1:
        return f"{scale_by!r} shrinks the latent to nothing ({width}x{height} px)"
    if max(width, height) > MAX_SIDE:
        return f"{scale_by!r} makes a {width}x{height} image; the most is {MAX_SIDE} px a side"
    return None


def _slerp(first: torch.Tensor, second: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Vectors [..., C] blended: slerp of directions, lerp of lengths (ratio [..., 1])."""
    first_norm = first.norm(dim=-1, keepdim=True)
    second_norm = second.norm(dim=-1, keepdim=True)
    # A zero vector has no direction: it contributes none (its length still blends).
    first_unit = torch.where(first_norm == 0, 0.0, first / first_norm)
    second_unit = torch.where(second_norm == 0, 0.0, second / second_norm)
    cosine = (first_unit * second_unit).sum(dim=-1, keepdim=True)
    angle = torch.acos(cosine.clamp(-1.0, 1.0))
    sine = torch.sin(angle)
    direction = (
        torch.sin((1 - ratio) * angle) * first_unit + torch.sin(ratio * angle) * second_unit
    ) / sine
    blended = direction * (first_norm * (1 - ratio) + second_norm * ratio)
    blended = torch.where(cosine > PARALLEL, first, blended)
    return torch.where(cosine < -PARALLEL, first * (1 - ratio) + second * ratio, blended)


def _positions(old: int, new: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each new cell: the two old cells around its centre and the weight of the second
    (align_corners=False positions, clamped at the borders)."""
    centres = (torch.arange(new, dtype=torch.float32) + 0.5) * (old / new) - 0.5
    centres = centres.clamp(0, old - 1)
    lower = centres.floor().long()
    upper = (lower + 1).clamp(max=old - 1)
    return lower, upper, centres - lower


def _bislerp_last_axis(samples: torch.Tensor, new: int) -> torch.Tensor:
    """[B, C, H, W] to [B, C, H, new] by slerp between neighbouring columns."""
    lower, upper, ratio = _positions(samples.shape[-1], new)
    vectors = samples.movedim(1, -1)  # [B, H, W, C]
    blended = _slerp(vectors[:, :, lower], vectors[:, :, upper], ratio[:, None])
    return blended.movedim(-1, 1)


def bislerp(samples: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """ComfyUI's bislerp resize of [B, C, H, W] latents: along the width, then the height."""
    wide = _bislerp_last_axis(samples.float(), width)
    tall = _bislerp_last_axis(wide.transpose(-1, -2), height).transpose(-1, -2)
    return tall.to(samples.dtype).contiguous()


def latent_crop_cost(query: CostQuery) -> Cost:
    samples = query.batch("samples")
    values = [query.integer(name) for name in ("width", "height", "x", "y")]
    if samples is None or None in values:
        return Cost()
    width, height, x, y = (value or 0 for value in values)
    refusals = []
    if x >= samples.width:
        refusals.append(Refusal("x", _past(x, "width", samples.width, LATENT_DOWNSCALE)))
    if y >= samples.height:
        refusals.append(Refusal("y", _past(y, "height", samples.height, LATENT_DOWNSCALE)))
    if refusals:
        return Cost(refusals=tuple(refusals))
    width, height = min(width, samples.width - x), min(height, samples.height - y)
    return Cost(outputs={"latent": Batch(width, height, samples.count, query.node_id)})


def latent_rotate_cost(query: CostQuery) -> Cost:
    samples = query.batch("samples")
    if samples is None:
        return Cost()
    if query.literals.get("rotation") in ("90 degrees", "270 degrees"):
        samples = Batch(samples.height, samples.width, samples.count, samples.origin)
    return Cost(outputs={"latent": samples})


def latent_upscale_by_cost(query: CostQuery) -> Cost:
    samples, scale_by = query.batch("samples"), query.number("scale_by")
    if samples is None or scale_by is None:
        return Cost()
    width = scaled_cells(samples.width // LATENT_DOWNSCALE, scale_by) * LATENT_DOWNSCALE
    height = scaled_cells(samples.height // LATENT_DOWNSCALE, scale_by) * LATENT_DOWNSCALE
    problem = _size_problem(width, height, scale_by)
    if problem is not None:
        return Cost(refusals=(Refusal("scale_by", problem),))
    out = Batch(width, height, samples.count, query.node_id)
    return Cost(outputs={"latent": out}, host_working_bytes=out.latent_bytes)  # bislerp's copy


_SAMPLES = socket("samples", SocketType.LATENT)
_LATENT_OUT = (Output("latent", SocketType.LATENT),)

NODES = [
    NodeSpec(
        id="latent.crop",
        display_name="Latent Crop",
        aliases=("LatentCrop", "Crop Latent"),
        category="latent/transform",
        description="The width x height pixel region at (x, y); a region reaching past the "
        "latent is cut at its edge. The noise mask is cropped with it.",
        inputs=(
            _SAMPLES,
            int_input("width", 512, min=64, max=MAX_SIDE, step=8),
            int_input("height", 512, min=64, max=MAX_SIDE, step=8),
            int_input("x", 0, min=0, max=MAX_SIDE, step=8),
            int_input("y", 0, min=0, max=MAX_SIDE, step=8),
        ),
        outputs=_LATENT_OUT,
        function=latent_crop,
        cost=latent_crop_cost,
    ),
    NodeSpec(
        id="latent.flip",
        display_name="Flip Latent",
        aliases=("LatentFlip",),
        category="latent/transform",
        description="Mirrors the latent (and its noise mask): 'x-axis' turns it upside down, "
        "'y-axis' swaps left and right.",
        inputs=(_SAMPLES, enum_input("flip_method", FLIP_METHODS)),
        outputs=_LATENT_OUT,
        function=latent_flip,
    ),
    NodeSpec(
        id="latent.rotate",
        display_name="Rotate Latent",
        aliases=("LatentRotate",),
        category="latent/transform",
        description="Turns the latent (and its noise mask) clockwise by quarter turns.",
        inputs=(_SAMPLES, enum_input("rotation", ROTATIONS)),
        outputs=_LATENT_OUT,
        function=latent_rotate,
        cost=latent_rotate_cost,
    ),
    NodeSpec(
        id="latent.upscale_by",
        display_name="Upscale Latent By",
        aliases=("LatentUpscaleBy",),
        category="latent",
        description="Resizes the latent by a factor (each side rounded to whole latent cells). "
        "bislerp blends neighbouring latent vectors spherically, which keeps their length.",
        inputs=(
            _SAMPLES,
            enum_input("upscale_method", UPSCALE_METHODS),
            float_input("scale_by", 1.5, min=0.01, max=8.0),
        ),
        outputs=_LATENT_OUT,
        function=latent_upscale_by,
        cost=latent_upscale_by_cost,
    ),
]
