"""Image geometry: scale (to a size, by a factor, to a pixel count), crop, pad, flip, rotate.

Each node follows the ComfyUI class named in its aliases, input names and order included, so a
ported graph behaves the same (resampling: `resize_images` in the public API). Every node whose
output size differs from its input declares a cost with the new size, so the memory budget
weighs what follows; the cost and the node share one size rule, so a size past MAX_SIDE is
refused at validation when the input's size is known there, and by the node when it is not.
"""

from __future__ import annotations

import numpy as np
import torch

from latentloom.api import (
    CROP_METHODS,
    MAX_SIDE,
    UPSCALE_METHODS,
    Batch,
    Cost,
    CostQuery,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SizeProblem,
    SocketType,
    enum_input,
    float_input,
    int_input,
    resize_images,
    scale_by_size,
    scale_size,
    socket,
    total_pixels_size,
)

FLIP_METHODS = ("x-axis: vertically", "y-axis: horizontally")  # ComfyUI's wording
ROTATIONS = ("none", "90 degrees", "180 degrees", "270 degrees")  # clockwise
PAD_MODES = ("constant", "edge", "reflect")


def _size(image: torch.Tensor) -> tuple[int, int]:
    return image.shape[2], image.shape[1]


def _checked(size: tuple[int, int] | SizeProblem) -> tuple[int, int]:
    if isinstance(size, SizeProblem):
        raise ValueError(size.message)
    return size


def image_scale(
    ctx: NodeContext, image: torch.Tensor, upscale_method: str, width: int, height: int, crop: str
) -> dict[str, object]:
    if width == 0 and height == 0:
        return {"image": image}  # ComfyUI: both 0 leave the image as it is
    target = _checked(scale_size(*_size(image), width, height))
    return {"image": resize_images(image, *target, upscale_method, crop)}


def image_scale_by(
    ctx: NodeContext, image: torch.Tensor, upscale_method: str, scale_by: float
) -> dict[str, object]:
    target = _checked(scale_by_size(*_size(image), scale_by))
    return {"image": resize_images(image, *target, upscale_method)}


def image_scale_to_total_pixels(
    ctx: NodeContext,
    image: torch.Tensor,
    upscale_method: str,
    megapixels: float,
    resolution_steps: int,
) -> dict[str, object]:
    target = _checked(total_pixels_size(*_size(image), megapixels, resolution_steps))
    return {"image": resize_images(image, *target, upscale_method)}


def crop_box(
    source_width: int, source_height: int, width: int, height: int, x: int, y: int
) -> tuple[int, int, int, int]:
    """(x, y, width, height) of Image Crop: ComfyUI moves a corner past the image onto its last
    row or column and cuts the size at the image's edge."""
    x, y = min(x, source_width - 1), min(y, source_height - 1)
    return x, y, min(width, source_width - x), min(height, source_height - y)


def image_crop(
    ctx: NodeContext, image: torch.Tensor, width: int, height: int, x: int, y: int
) -> dict[str, object]:
    left, top, w, h = crop_box(*_size(image), width, height, x, y)
    return {"image": image[:, top : top + h, left : left + w, :].clone()}


def pad_image(
    ctx: NodeContext,
    image: torch.Tensor,
    left: int,
    top: int,
    right: int,
    bottom: int,
    mode: str,
    color: int,
) -> dict[str, object]:
    width, height = _size(image)
    problem = _pad_problem(width, height, left, top, right, bottom)
    if problem is not None:
        raise ValueError(problem.message)
    if mode == "constant":
        rgb = [((color >> shift) & 0xFF) / 255.0 for shift in (16, 8, 0)]
        out = torch.tensor(rgb, dtype=image.dtype).expand(
            image.shape[0], height + top + bottom, width + left + right, 3
        )
        out = out.clone()
        out[:, top : top + height, left : left + width] = image
    else:
        # numpy reflects as often as needed, so a pad wider than the image still works
        # (torch's reflect stops at one image width).
        widths = ((0, 0), (top, bottom), (left, right), (0, 0))
        out = torch.from_numpy(
            np.pad(image.numpy(), widths, mode="edge" if mode == "edge" else "reflect")
        )
    mask = torch.ones(1, height + top + bottom, width + left + right)
    mask[:, top : top + height, left : left + width] = 0.0
    return {"image": out, "mask": mask}


def _pad_problem(
    width: int, height: int, left: int, top: int, right: int, bottom: int
) -> SizeProblem | None:
    for side, before, after, size in (
        ("width", left, right, width),
        ("height", top, bottom, height),
    ):
        total = size + before + after
        if total > MAX_SIDE:
            names = ("left", "right") if side == "width" else ("top", "bottom")
            name = names[0] if before >= after else names[1]
            return SizeProblem(
                name,
                f"{names[0]} {before} + {names[1]} {after} pad the {side} {size} to {total}; "
                f"the largest side allowed is {MAX_SIDE:,}",
            )
    return None


def image_flip(ctx: NodeContext, image: torch.Tensor, flip_method: str) -> dict[str, object]:
    axis = 1 if flip_method.startswith("x") else 2  # about the x-axis: rows swap
    return {"image": torch.flip(image, dims=[axis])}


def image_rotate(ctx: NodeContext, image: torch.Tensor, rotation: str) -> dict[str, object]:
    quarter_turns = ROTATIONS.index(rotation)
    if quarter_turns == 0:
        return {"image": image}
    # From the width axis towards the height axis: clockwise on screen, as ComfyUI turns.
    return {"image": torch.rot90(image, k=quarter_turns, dims=[2, 1]).contiguous()}


# Costs: the size each node makes, from the same rules the nodes apply.


def _resized(query: CostQuery, image: Batch, size: tuple[int, int] | SizeProblem) -> Cost:
    if isinstance(size, SizeProblem):
        return Cost(refusals=(Refusal(size.input, size.message),))
    if size == (image.width, image.height):
        out = image
    else:
        out = Batch(size[0], size[1], image.count, query.node_id)
    # The channels-first result is laid out again as [B, H, W, C]: one more copy, briefly.
    return Cost(outputs={"image": out}, host_working_bytes=out.image_bytes)


def image_scale_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    width, height = query.integer("width"), query.integer("height")
    if image is None or width is None or height is None:
        return Cost()
    return _resized(query, image, scale_size(image.width, image.height, width, height))


def image_scale_by_cost(query: CostQuery) -> Cost:
    image, scale_by = query.batch("image"), query.number("scale_by")
    if image is None or scale_by is None:
        return Cost()
    return _resized(query, image, scale_by_size(image.width, image.height, scale_by))


def image_scale_to_total_pixels_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    megapixels, steps = query.number("megapixels"), query.integer("resolution_steps")
    if image is None or megapixels is None or steps is None:
        return Cost()
    return _resized(query, image, total_pixels_size(image.width, image.height, megapixels, steps))


def image_crop_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    box = [query.integer(name) for name in ("width", "height", "x", "y")]
    if image is None or None in box:
        return Cost()
    width, height, x, y = (value or 0 for value in box)
    _, _, w, h = crop_box(image.width, image.height, width, height, x, y)
    return Cost(outputs={"image": Batch(w, h, image.count, query.node_id)})


def pad_image_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    sides = [query.integer(name) for name in ("left", "top", "right", "bottom")]
    if image is None or None in sides:
        return Cost()
    left, top, right, bottom = (value or 0 for value in sides)
    problem = _pad_problem(image.width, image.height, left, top, right, bottom)
    if problem is not None:
        return Cost(refusals=(Refusal(problem.input, problem.message),))
    out = Batch(image.width + left + right, image.height + top + bottom, image.count, query.node_id)
    return Cost(outputs={"image": out})


def image_rotate_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    if image is None:
        return Cost()
    if query.literals.get("rotation") in ("90 degrees", "270 degrees"):
        image = Batch(image.height, image.width, image.count, image.origin)
    return Cost(outputs={"image": image})


_IMAGE = socket("image", SocketType.IMAGE)
_OUT = (Output("image", SocketType.IMAGE),)


NODES = [
    NodeSpec(
        id="image.scale",
        display_name="Image Scale",
        aliases=("ImageScale", "Upscale Image"),
        category="image/upscaling",
        description="Resizes to width x height; a side of 0 follows the other at the image's "
        "aspect ratio. 'center' crops to the new aspect ratio first instead of stretching.",
        inputs=(
            _IMAGE,
            enum_input("upscale_method", UPSCALE_METHODS),
            int_input("width", 512, min=0, max=MAX_SIDE),
            int_input("height", 512, min=0, max=MAX_SIDE),
            enum_input("crop", CROP_METHODS),
        ),
        outputs=_OUT,
        function=image_scale,
        cost=image_scale_cost,
    ),
    NodeSpec(
        id="image.scale_by",
        display_name="Image Scale By",
        aliases=("ImageScaleBy", "Upscale Image By"),
        category="image/upscaling",
        description="Resizes by a factor: each side times scale_by, rounded.",
        inputs=(
            _IMAGE,
            enum_input("upscale_method", UPSCALE_METHODS),
            float_input("scale_by", 1.0, min=0.01, max=8.0),
        ),
        outputs=_OUT,
        function=image_scale_by,
        cost=image_scale_by_cost,
    ),
    NodeSpec(
        id="image.scale_to_total_pixels",
        display_name="Image Scale To Total Pixels",
        aliases=("ImageScaleToTotalPixels", "Scale Image to Total Pixels"),
        category="image/upscaling",
        description="Resizes to about this many megapixels (1.0 = 1024x1024 pixels) keeping the "
        "aspect ratio; each side is rounded to a multiple of resolution_steps.",
        inputs=(
            _IMAGE,
            enum_input("upscale_method", UPSCALE_METHODS),
            float_input("megapixels", 1.0, min=0.01, max=16.0),
            int_input("resolution_steps", 1, min=1, max=256),
        ),
        outputs=_OUT,
        function=image_scale_to_total_pixels,
        cost=image_scale_to_total_pixels_cost,
    ),
    NodeSpec(
        id="image.crop",
        display_name="Image Crop",
        aliases=("ImageCrop",),
        category="image/transform",
        description="The width x height rectangle at (x, y), cut at the image's edges; a corner "
        "past the image moves onto its last row or column.",
        inputs=(
            _IMAGE,
            int_input("width", 512, min=1, max=MAX_SIDE),
            int_input("height", 512, min=1, max=MAX_SIDE),
            int_input("x", 0, min=0, max=MAX_SIDE),
            int_input("y", 0, min=0, max=MAX_SIDE),
        ),
        outputs=_OUT,
        function=image_crop,
        cost=image_crop_cost,
    ),
    NodeSpec(
        id="image.pad",
        display_name="Pad Image",
        aliases=("Expand Image", "Image Pad"),
        category="image/transform",
        description="Adds pixels on each side: a solid colour (0xRRGGBB as a number: 16777215 is "
        "white), the edge pixels repeated, or the image mirrored. The mask is 1 on the new pixels.",
        inputs=(
            _IMAGE,
            int_input("left", 0, min=0, max=MAX_SIDE),
            int_input("top", 0, min=0, max=MAX_SIDE),
            int_input("right", 0, min=0, max=MAX_SIDE),
            int_input("bottom", 0, min=0, max=MAX_SIDE),
            enum_input("mode", PAD_MODES),
            int_input("color", 0, min=0, max=0xFFFFFF),
        ),
        outputs=(Output("image", SocketType.IMAGE), Output("mask", SocketType.MASK)),
        function=pad_image,
        cost=pad_image_cost,
    ),
    NodeSpec(
        id="image.flip",
        display_name="Image Flip",
        aliases=("ImageFlip", "Flip Image"),
        category="image/transform",
        description="Mirrors the image: about the x-axis (upside down) or the y-axis (left-right).",
        inputs=(_IMAGE, enum_input("flip_method", FLIP_METHODS)),
        outputs=_OUT,
        function=image_flip,
    ),
    NodeSpec(
        id="image.rotate",
        display_name="Image Rotate",
        aliases=("ImageRotate", "Rotate Image"),
        category="image/transform",
        description="Turns the image clockwise by quarter turns.",
        inputs=(_IMAGE, enum_input("rotation", ROTATIONS)),
        outputs=_OUT,
        function=image_rotate,
        cost=image_rotate_cost,
    ),
]
