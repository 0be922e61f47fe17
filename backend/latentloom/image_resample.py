"""Image resampling and the size rules of the scale nodes, shared by nodes and their costs.

An IMAGE is float32 [B, H, W, 3] in 0..1 on the CPU. Resizing follows ComfyUI's
`common_upscale` so a graph ported from it gives the same pixels: 'nearest-exact',
'bilinear', 'area' and 'bicubic' are `torch.nn.functional.interpolate` with its defaults
(no antialiasing, align_corners False), an optional centre crop to the target aspect first;
'lanczos' goes through Pillow image by image, a width pass then a height pass, each clamped to
0..1 as Pillow's 8-bit path clips them (on noisy content that clip changes values by up to
0.13). The difference: Pillow resamples each channel as 32-bit float here, where ComfyUI goes
through 8 bits, so its lanczos also rounds every pixel to 1/255 and is never an identity.
Bicubic overshoots at sharp edges; it is clamped to 0..1 unless the caller blends further
and clamps itself (Image Blend, as ComfyUI).

The size rules (ImageScale's "0 keeps the aspect ratio", Image Scale By's rounding, Image Scale
To Total Pixels' mebipixels) are plain functions over integers, so the cost estimate before a
run and the node during it compute the same size and refuse the same requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from latentloom.nodes_limits import MAX_SIDE

UpscaleMethod = Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
UPSCALE_METHODS: tuple[UpscaleMethod, ...] = (
    "nearest-exact",
    "bilinear",
    "area",
    "bicubic",
    "lanczos",
)
CropMethod = Literal["disabled", "center"]
CROP_METHODS: tuple[CropMethod, ...] = ("disabled", "center")
MEBIPIXEL = 1024 * 1024  # ComfyUI's "megapixels" are 2^20 pixels: 1.0 at 1024x1024


@dataclass(frozen=True)
class SizeProblem:
    """A requested size past the bounds: the input to change and what to change it to."""

    input: str
    message: str


def resize_images(
    images: torch.Tensor,
    width: int,
    height: int,
    method: str,
    crop: str = "disabled",
    *,
    clamp: bool = True,
) -> torch.Tensor:
    """[B, H, W, C] images resized to width x height (a new tensor; the input is untouched).
    `clamp=False` leaves bicubic's overshoot for a caller that clamps later."""
    if method not in UPSCALE_METHODS:
        raise ValueError(f"unknown upscale method {method!r}; expected one of {UPSCALE_METHODS}")
    if crop not in CROP_METHODS:
        raise ValueError(f"unknown crop {crop!r}; expected one of {CROP_METHODS}")
    channels_first = images.movedim(-1, 1)
    if crop == "center":
        channels_first = _center_crop(channels_first, width, height)
    if method == "lanczos":
        out = _lanczos(channels_first, width, height)
    else:
        out = F.interpolate(channels_first, size=(height, width), mode=method)
    if method == "bicubic" and clamp:
        out = out.clamp(0.0, 1.0)  # its negative lobes overshoot at sharp edges
    return out.movedim(1, -1).contiguous()


def _center_crop(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The middle of [B, C, H, W] images at the target aspect ratio, rounded as ComfyUI does."""
    old_height, old_width = images.shape[-2], images.shape[-1]
    old_aspect, new_aspect = old_width / old_height, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
    return images[:, :, y : old_height - y, x : old_width - x]


def _lanczos(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pillow's Lanczos (a = 3) on each channel of each image, in 32-bit float: the width pass,
    then the height pass (Pillow's order), each clamped to 0..1."""
    source = images.detach().float().cpu().numpy()
    out = np.empty((*source.shape[:2], height, width), dtype=np.float32)
    for index in np.ndindex(*source.shape[:2]):
        channel = Image.fromarray(np.ascontiguousarray(source[index]))  # mode "F"
        for size in ((width, channel.height), (width, height)):
            if channel.size != size:  # Pillow skips a pass that keeps its side
                resized = channel.resize(size, Image.Resampling.LANCZOS)
                channel = Image.fromarray(np.clip(np.asarray(resized), 0.0, 1.0))
        out[index] = np.asarray(channel)
    return torch.from_numpy(out).to(images.dtype)


def _side_problem(input_name: str, width: int, height: int, how: str) -> SizeProblem | None:
    if max(width, height) > MAX_SIDE:
        return SizeProblem(
            input_name,
            f"{how} makes a {width}x{height} image; the largest side allowed is {MAX_SIDE:,}",
        )
    if min(width, height) < 1:
        return SizeProblem(
            input_name, f"{how} makes a {width}x{height} image; every side needs a pixel at least"
        )
    return None


def scale_size(
    source_width: int, source_height: int, width: int, height: int
) -> tuple[int, int] | SizeProblem:
    """Image Scale's target: a side of 0 follows the other at the source's aspect ratio; both 0
    keep the source size."""
    if width == 0 and height == 0:
        return source_width, source_height
    if width == 0:
        width = max(1, round(source_width * height / source_height))
        how = f"height {height} at the aspect ratio of {source_width}x{source_height}"
        return _side_problem("height", width, height, how) or (width, height)
    if height == 0:
        height = max(1, round(source_height * width / source_width))
        how = f"width {width} at the aspect ratio of {source_width}x{source_height}"
        return _side_problem("width", width, height, how) or (width, height)
    return width, height


def scale_by_size(
    source_width: int, source_height: int, scale_by: float
) -> tuple[int, int] | SizeProblem:
    """Image Scale By's target: each side times the factor, rounded."""
    width, height = round(source_width * scale_by), round(source_height * scale_by)
    how = f"scale_by {scale_by!r} of {source_width}x{source_height}"
    return _side_problem("scale_by", width, height, how) or (width, height)


def total_pixels_size(
    source_width: int, source_height: int, megapixels: float, resolution_steps: int
) -> tuple[int, int] | SizeProblem:
    """Image Scale To Total Pixels' target: about `megapixels` x 2^20 pixels at the source's
    aspect ratio, each side rounded to a multiple of `resolution_steps`."""
    scale = math.sqrt(megapixels * MEBIPIXEL / (source_width * source_height))
    width = round(source_width * scale / resolution_steps) * resolution_steps
    height = round(source_height * scale / resolution_steps) * resolution_steps
    how = (
        f"megapixels {megapixels!r} in steps of {resolution_steps} at the aspect ratio of "
        f"{source_width}x{source_height}"
    )
    return _side_problem("megapixels", width, height, how) or (width, height)


def repeat_to_batch(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """The first `size` entries of the batch cycled as often as needed (ComfyUI's rule when a
    source and a destination batch differ): [a, b] to 3 is [a, b, a]; to 1 is [a]."""
    count = tensor.shape[0]
    if count == size:
        return tensor
    repeats = math.ceil(size / count)
    return tensor.repeat(repeats, *([1] * (tensor.ndim - 1)))[:size]
