"""Masks: make, invert, grow, feather, threshold, combine and crop them; convert to and from images.

A MASK is float32 [B, H, W] in 0..1 (1 = "change this", as in ComfyUI). The math lives in
`latentloom.masks` (through the public API) so packs can reuse it; these are the node specs,
named and valued as ComfyUI's nodes of the same class, whose names are the aliases.
"""

from __future__ import annotations

import torch

from latentloom.api import (
    COMPOSITE_OPERATIONS,
    MASK_CHANNELS,
    MAX_SIDE,
    Cost,
    CostQuery,
    Input,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    boolean_input,
    color_to_mask,
    composite_masks,
    crop_mask,
    enum_input,
    feather_mask,
    float_input,
    grow_mask,
    image_to_mask,
    int_input,
    mask_batch,
    mask_to_image,
    socket,
    threshold_mask,
)

CATEGORY = "mask"
WHITE = 0xFFFFFF


def solid_mask(ctx: NodeContext, value: float, width: int, height: int) -> dict[str, object]:
    return {"mask": torch.full((1, height, width), value, dtype=torch.float32)}


def invert_mask(ctx: NodeContext, mask: torch.Tensor) -> dict[str, object]:
    return {"mask": 1.0 - mask_batch(mask)}


def grow_mask_node(
    ctx: NodeContext, mask: torch.Tensor, expand: int, tapered_corners: bool
) -> dict[str, object]:
    return {"mask": grow_mask(mask, expand, tapered_corners)}


def feather_mask_node(
    ctx: NodeContext, mask: torch.Tensor, left: int, top: int, right: int, bottom: int
) -> dict[str, object]:
    return {"mask": feather_mask(mask, left, top, right, bottom)}


def threshold_mask_node(ctx: NodeContext, mask: torch.Tensor, value: float) -> dict[str, object]:
    return {"mask": threshold_mask(mask, value)}


def mask_composite(
    ctx: NodeContext,
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    operation: str,
) -> dict[str, object]:
    return {"mask": composite_masks(destination, source, x, y, operation)}


def crop_mask_node(
    ctx: NodeContext, mask: torch.Tensor, x: int, y: int, width: int, height: int
) -> dict[str, object]:
    mask_height, mask_width = mask.shape[-2:]
    if x >= mask_width or y >= mask_height:
        raise ValueError(
            f"the crop starts at x={x}, y={y}, outside the {mask_width}x{mask_height} mask; "
            f"x must be below {mask_width} and y below {mask_height}"
        )
    return {"mask": crop_mask(mask, x, y, width, height)}


def image_to_mask_node(ctx: NodeContext, image: torch.Tensor, channel: str) -> dict[str, object]:
    return {"mask": image_to_mask(image, channel)}


def mask_to_image_node(ctx: NodeContext, mask: torch.Tensor) -> dict[str, object]:
    return {"image": mask_to_image(mask)}


def image_color_to_mask(ctx: NodeContext, image: torch.Tensor, color: int) -> dict[str, object]:
    return {"mask": color_to_mask(image, color)}


def solid_mask_cost(query: CostQuery) -> Cost:
    width, height = query.integer("width"), query.integer("height")
    if width is None or height is None:
        return Cost()
    return Cost(host_working_bytes=4 * width * height)  # one float32 mask


_MASK = socket("mask", SocketType.MASK)
_IMAGE = socket("image", SocketType.IMAGE)
_MASK_OUT = (Output("mask", SocketType.MASK),)


def _offset(name: str) -> Input:
    """A distance from the top or left edge, in pixels."""
    return int_input(name, 0, min=0, max=MAX_SIDE)


NODES = [
    NodeSpec(
        id="mask.solid",
        display_name="Solid Mask",
        aliases=("SolidMask",),
        category=CATEGORY,
        description="One mask of the given size filled with `value`.",
        inputs=(
            float_input("value", 1.0, min=0.0, max=1.0),
            int_input("width", 512, min=1, max=MAX_SIDE),
            int_input("height", 512, min=1, max=MAX_SIDE),
        ),
        outputs=_MASK_OUT,
        function=solid_mask,
        cost=solid_mask_cost,
    ),
    NodeSpec(
        id="mask.invert",
        display_name="Invert Mask",
        aliases=("InvertMask",),
        category=CATEGORY,
        description="1 - mask.",
        inputs=(_MASK,),
        outputs=_MASK_OUT,
        function=invert_mask,
    ),
    NodeSpec(
        id="mask.grow",
        display_name="Grow Mask",
        aliases=("GrowMask",),
        category=CATEGORY,
        description="Grows the mask by `expand` pixels (a negative value shrinks it), one 3x3 "
        "step per pixel; tapered corners leave out the diagonals, so corners round off.",
        inputs=(
            _MASK,
            int_input("expand", 0, min=-MAX_SIDE, max=MAX_SIDE),
            boolean_input("tapered_corners", True),
        ),
        outputs=_MASK_OUT,
        function=grow_mask_node,
    ),
    NodeSpec(
        id="mask.feather",
        display_name="Feather Mask",
        aliases=("FeatherMask",),
        category=CATEGORY,
        description="Fades the mask linearly towards each edge over that many pixels.",
        inputs=(_MASK, _offset("left"), _offset("top"), _offset("right"), _offset("bottom")),
        outputs=_MASK_OUT,
        function=feather_mask_node,
    ),
    NodeSpec(
        id="mask.threshold",
        display_name="Threshold Mask",
        aliases=("ThresholdMask",),
        category=CATEGORY,
        description="1 where the mask is above `value`, 0 elsewhere.",
        inputs=(_MASK, float_input("value", 0.5, min=0.0, max=1.0)),
        outputs=_MASK_OUT,
        function=threshold_mask_node,
    ),
    NodeSpec(
        id="mask.composite",
        display_name="Mask Composite",
        aliases=("MaskComposite",),
        category=CATEGORY,
        description="Combines `source`, placed at (x, y), into `destination`; the boolean "
        "operations round both masks first; the result is clamped to 0..1.",
        inputs=(
            socket("destination", SocketType.MASK),
            socket("source", SocketType.MASK),
            _offset("x"),
            _offset("y"),
            enum_input("operation", COMPOSITE_OPERATIONS),
        ),
        outputs=_MASK_OUT,
        function=mask_composite,
    ),
    NodeSpec(
        id="mask.crop",
        display_name="Crop Mask",
        aliases=("CropMask",),
        category=CATEGORY,
        description="The region at (x, y) of the given size, cut to what lies inside the mask.",
        inputs=(
            _MASK,
            _offset("x"),
            _offset("y"),
            int_input("width", 512, min=1, max=MAX_SIDE),
            int_input("height", 512, min=1, max=MAX_SIDE),
        ),
        outputs=_MASK_OUT,
        function=crop_mask_node,
    ),
    NodeSpec(
        id="mask.from_image",
        display_name="Image To Mask",
        aliases=("ImageToMask", "Convert Image to Mask"),
        category=CATEGORY,
        description="One colour channel of an image as a mask. Images carry no alpha here "
        "(Load Image gives it as its mask output), so 'alpha' is all ones.",
        inputs=(_IMAGE, enum_input("channel", MASK_CHANNELS)),
        outputs=_MASK_OUT,
        function=image_to_mask_node,
    ),
    NodeSpec(
        id="mask.to_image",
        display_name="Mask To Image",
        aliases=("MaskToImage", "Convert Mask to Image"),
        category=CATEGORY,
        description="A mask as a grey image.",
        inputs=(_MASK,),
        outputs=(Output("image", SocketType.IMAGE),),
        function=mask_to_image_node,
    ),
    NodeSpec(
        id="mask.from_color",
        display_name="Image Color To Mask",
        aliases=("ImageColorToMask",),
        category=CATEGORY,
        description="1 where a pixel's 8-bit colour equals `color` (0xRRGGBB, e.g. 16711680 "
        "for pure red), 0 elsewhere.",
        inputs=(_IMAGE, int_input("color", 0, min=0, max=WHITE)),
        outputs=_MASK_OUT,
        function=image_color_to_mask,
    ),
]
