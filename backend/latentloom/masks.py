"""Mask math: the pure tensor functions behind the mask, inpaint and outpaint nodes.

A MASK is float32 [B, H, W] in 0..1 on the CPU (one mask is [1, H, W]); 1 means "change this".
Every function takes a mask of any leading shape that ends in [H, W] (ComfyUI's nodes accept
[H, W] too), returns a new tensor and never writes into its input.

Values follow ComfyUI's nodes of the same name, so a graph ported from it gives the same masks:
grow/shrink is repeated 3x3 grey dilation/erosion (the pixel beyond the border counts as the
border pixel, as scipy's default `reflect` mode gives), the inpaint grow is a box filter on the
rounded mask, the outpaint feather is quadratic. Where ComfyUI's own code disagrees with its
evident intent we follow the intent and say so (Feather Mask's right and bottom ramps, below).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

COMPOSITE_OPERATIONS = (
    "multiply",
    "add",
    "subtract",
    "and",
    "or",
    "xor",
)
MASK_CHANNELS = ("red", "green", "blue", "alpha")


def mask_batch(mask: torch.Tensor) -> torch.Tensor:
    """The mask as [B, H, W] float32 (a view when it already is one)."""
    if mask.ndim < 2:
        raise ValueError(
            f"a mask needs at least 2 dimensions [H, W]; got shape {tuple(mask.shape)}"
        )
    return mask.reshape(-1, mask.shape[-2], mask.shape[-1]).float()


def grow_mask(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """Dilate (expand > 0) or erode (expand < 0) by |expand| steps of a 3x3 neighbourhood.

    Tapered corners use the cross (no diagonals), so corners round off; otherwise the full
    square. Stops early once a step changes nothing (a mask converges long before a huge
    `expand` runs out).
    """
    current = mask_batch(mask).clone()
    for _ in range(abs(expand)):
        following = _neighbourhood_extreme(current, tapered_corners, largest=expand > 0)
        if torch.equal(following, current):
            break
        current = following
    return current


def _neighbourhood_extreme(mask: torch.Tensor, cross: bool, *, largest: bool) -> torch.Tensor:
    """Max (or min) over each pixel's 3x3 (or cross) neighbourhood, border pixels repeated."""
    padded = F.pad(mask.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    height, width = mask.shape[-2:]
    offsets = [(dy, dx) for dy in range(3) for dx in range(3)]
    if cross:
        offsets = [(dy, dx) for dy, dx in offsets if dy == 1 or dx == 1]
    shifted = torch.stack([padded[:, dy : dy + height, dx : dx + width] for dy, dx in offsets])
    return shifted.amax(dim=0) if largest else shifted.amin(dim=0)


def feather_mask(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """Fade each edge linearly over that many pixels: the outermost pixel keeps 1/n of its
    value, the n-th from the edge all of it; widths beyond the mask are clamped to its size.

    ComfyUI's right and bottom loops index `-x` from x = 0, so they scale column/row 0 (the
    left/top edge) by 1/n and give the outermost right/bottom pixel 2/n; we apply the mirror
    image of the left/top ramp instead, as the node's description intends.
    """
    out = mask_batch(mask).clone()
    height, width = out.shape[-2:]
    ramps = (
        (min(left, width), -1, False),
        (min(right, width), -1, True),
        (min(top, height), -2, False),
        (min(bottom, height), -2, True),
    )
    for length, dim, from_end in ramps:
        if length <= 0:
            continue
        size = out.shape[dim]
        factors = torch.ones(size)
        ramp = torch.arange(1, length + 1, dtype=torch.float32) / length  # 1/n .. 1
        if from_end:
            factors[size - length :] = ramp.flip(0)
        else:
            factors[:length] = ramp
        out = out * (factors if dim == -1 else factors.unsqueeze(1))
    return out


def threshold_mask(mask: torch.Tensor, value: float) -> torch.Tensor:
    """1 where the mask is strictly above `value`, else 0."""
    return (mask_batch(mask) > value).float()


def composite_masks(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    operation: str,
) -> torch.Tensor:
    """Combine `source`, placed with its top-left corner at (x, y), into `destination`.

    Only the overlap changes; the boolean operations round both sides first; the whole result
    is clamped to 0..1. A one-mask side is repeated to the other's batch; a source placed wholly
    outside leaves the destination as it was (clamped).
    """
    if operation not in COMPOSITE_OPERATIONS:
        raise ValueError(
            f"operation {operation!r} is not one of: {', '.join(COMPOSITE_OPERATIONS)}"
        )
    dest, src = mask_batch(destination), mask_batch(source)
    if dest.shape[0] != src.shape[0] and 1 not in (dest.shape[0], src.shape[0]):
        raise ValueError(
            f"destination holds {dest.shape[0]} masks and source {src.shape[0]}; "
            "they must be equal or one of them a single mask"
        )
    out = dest.expand(max(dest.shape[0], src.shape[0]), -1, -1).clone()
    height, width = out.shape[-2:]
    bottom, right = min(y + src.shape[-2], height), min(x + src.shape[-1], width)
    if bottom > y and right > x:
        below = out[:, y:bottom, x:right]
        above = src[:, : bottom - y, : right - x]
        out[:, y:bottom, x:right] = _combine(below, above, operation)
    return out.clamp(0.0, 1.0)


def _combine(a: torch.Tensor, b: torch.Tensor, operation: str) -> torch.Tensor:
    if operation == "multiply":
        return a * b
    if operation == "add":
        return a + b
    if operation == "subtract":
        return a - b
    left, right = a.round().bool(), b.round().bool()
    if operation == "and":
        return (left & right).float()
    if operation == "or":
        return (left | right).float()
    if operation == "xor":
        return (left ^ right).float()
    raise ValueError(f"operation {operation!r} is not one of: {', '.join(COMPOSITE_OPERATIONS)}")


def crop_mask(mask: torch.Tensor, x: int, y: int, width: int, height: int) -> torch.Tensor:
    """The region [y, y + height) x [x, x + width), cut to what lies inside the mask."""
    return mask_batch(mask)[:, y : y + height, x : x + width].clone()


def image_to_mask(image: torch.Tensor, channel: str) -> torch.Tensor:
    """One channel of an IMAGE [B, H, W, 3] as a mask. IMAGE values carry no alpha (Load
    Image hands alpha out as its mask), so 'alpha' is opaque: all ones."""
    if channel not in MASK_CHANNELS:
        raise ValueError(f"channel {channel!r} is not one of: {', '.join(MASK_CHANNELS)}")
    if channel == "alpha":
        return torch.ones(image.shape[:-1], dtype=torch.float32)
    return image[..., MASK_CHANNELS.index(channel)].float().clone()


def mask_to_image(mask: torch.Tensor) -> torch.Tensor:
    """A mask as a grey IMAGE [B, H, W, 3]."""
    return mask_batch(mask).unsqueeze(-1).expand(-1, -1, -1, 3).contiguous()


def color_to_mask(image: torch.Tensor, color: int) -> torch.Tensor:
    """1 where the pixel's 8-bit colour (each channel clamped, scaled by 255 and rounded)
    packs to `color` as 0xRRGGBB, else 0."""
    levels = (image.clamp(0.0, 1.0) * 255.0).round().to(torch.int64)
    packed = (levels[..., 0] << 16) + (levels[..., 1] << 8) + levels[..., 2]
    return (packed == color).float()


def alpha_to_mask(alpha: torch.Tensor) -> torch.Tensor:
    """ComfyUI's Load Image mask: 1 - alpha, so transparent (painted-out) pixels are 1."""
    return 1.0 - alpha.float()


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize to [B, height, width] (half-pixel centres, as ComfyUI's inpaint nodes)."""
    batch = mask_batch(mask)
    if batch.shape[-2:] == (height, width):
        return batch.clone()
    resized = F.interpolate(batch.unsqueeze(1), size=(height, width), mode="bilinear")
    return resized.squeeze(1)


def grow_mask_box(mask: torch.Tensor, size: int) -> torch.Tensor:
    """VAE Encode (for Inpaint)'s grow: a size x size box filter over the rounded mask,
    clamped to 0..1 and rounded, so any pixel within the box of a masked one becomes 1.

    The box is ComfyUI's: padding ceil((size - 1) / 2) on every side and the result cut to the
    mask's size, so an even box reaches one pixel further right and down than left and up.
    """
    batch = mask_batch(mask)
    if size <= 0:
        return batch.round()
    height, width = batch.shape[-2:]
    padding = math.ceil((size - 1) / 2)
    kernel = torch.ones(1, 1, size, size)
    summed = F.conv2d(batch.round().unsqueeze(1), kernel, padding=padding)
    return summed.clamp(0.0, 1.0)[:, 0, :height, :width].round()


def outpaint_feather(
    height: int, width: int, left: int, top: int, right: int, bottom: int, feathering: int
) -> torch.Tensor:
    """Pad Image for Outpaint's mask over the original image [height, width]: near a padded
    side it rises as ((feathering - d) / feathering)^2 with d the distance to that side
    (d = row or column index from the top/left, height - row or width - column from the
    bottom/right, as ComfyUI counts), 0 elsewhere. No feather unless 2 * feathering fits
    inside both sides."""
    if feathering <= 0 or 2 * feathering >= height or 2 * feathering >= width:
        return torch.zeros(height, width)
    # float64 then one rounding to float32, as ComfyUI's Python floats stored into a tensor.
    rows = torch.arange(height, dtype=torch.float64).unsqueeze(1).expand(height, width)
    columns = torch.arange(width, dtype=torch.float64).unsqueeze(0).expand(height, width)
    far_rows, far_columns = torch.full_like(rows, height), torch.full_like(columns, width)
    distance = torch.stack(
        [
            rows if top else far_rows,
            height - rows if bottom else far_rows,
            columns if left else far_columns,
            width - columns if right else far_columns,
        ]
    ).amin(dim=0)
    rise = (feathering - distance) / feathering
    return torch.where(distance < feathering, rise * rise, torch.zeros_like(rise)).float()


def pad_for_outpaint(
    image: torch.Tensor, left: int, top: int, right: int, bottom: int, feathering: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The image on a 0.5-grey canvas grown by the given sides, and the mask [1, H', W']:
    1 on the new area, the feather (`outpaint_feather`) over the original image."""
    count, height, width, channels = image.shape
    new_height, new_width = height + top + bottom, width + left + right
    canvas = torch.full((count, new_height, new_width, channels), 0.5, dtype=torch.float32)
    canvas[:, top : top + height, left : left + width] = image
    mask = torch.ones(new_height, new_width)
    feather = outpaint_feather(height, width, left, top, right, bottom, feathering)
    mask[top : top + height, left : left + width] = feather
    return canvas, mask.unsqueeze(0)


def inpaint_pixels(
    pixels: torch.Tensor, mask: torch.Tensor, downscale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """VAE Encode (for Inpaint)'s preparation: the mask resized to the pixels, both cut to a
    multiple of `downscale` (centred), and masked pixels (mask rounded to 1) set to 0.5 grey.

    Returns (pixels, mask [B or 1, H', W'])."""
    _, height, width, _ = pixels.shape
    resized = resize_mask(mask, height, width)
    if resized.shape[0] not in (1, pixels.shape[0]):
        raise ValueError(
            f"the mask holds {resized.shape[0]} masks for {pixels.shape[0]} images; "
            "give one mask, or one per image"
        )
    cut_height, cut_width = (height // downscale) * downscale, (width // downscale) * downscale
    top, left = (height % downscale) // 2, (width % downscale) // 2
    cut = pixels[:, top : top + cut_height, left : left + cut_width].float()
    resized = resized[:, top : top + cut_height, left : left + cut_width]
    keep = (1.0 - resized.round()).unsqueeze(-1)
    return (cut - 0.5) * keep + 0.5, resized
