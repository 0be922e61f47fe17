"""Pixel values: invert, colour adjustment, sharpen, blur and blend modes.

Invert, Blend, Blur and Sharpen follow ComfyUI's classes of the same name (its formulas,
kernels and input names), so a ported graph gives the same pixels. Blur and Sharpen use
ComfyUI's Gaussian kernel, whose sigma is measured in kernel radii (the taps sit on a -1..1
grid), and reflect the image at its edges; reflecting needs the radius below each side, which
is refused with the numbers rather than failing inside torch. Both run as two 1-D passes
(the Gaussian is separable; Sharpen's kernel is identity plus a multiple of it). Adjust Colors is our own: its
brightness, contrast and saturation are the factors of Pillow's ImageEnhance (1 keeps the
image, 0 gives black, the mean grey, greyscale), computed in float; gamma is x^(1/gamma).
At 1 a step is skipped, so the defaults return the image bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from latentloom.api import (
    Cost,
    CostQuery,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SocketType,
    enum_input,
    float_input,
    int_input,
    repeat_to_batch,
    resize_images,
    socket,
)

BLEND_MODES = ("normal", "multiply", "screen", "overlay", "soft_light", "difference")
# ITU-R 601 luma, as Pillow converts RGB to "L" (ImageEnhance's greyscale and mean).
LUMA = (0.299, 0.587, 0.114)


def invert(ctx: NodeContext, image: torch.Tensor) -> dict[str, object]:
    return {"image": 1.0 - image}


def blend_images(image1: torch.Tensor, image2: torch.Tensor, mode: str) -> torch.Tensor:
    """ComfyUI's blend modes, image1 the base and image2 the layer; 'difference' is signed
    (image1 - image2, clamped by the node), as ComfyUI computes it."""
    if mode == "normal":
        return image2
    if mode == "multiply":
        return image1 * image2
    if mode == "screen":
        return 1 - (1 - image1) * (1 - image2)
    if mode == "overlay":
        return torch.where(image1 <= 0.5, 2 * image1 * image2, 1 - 2 * (1 - image1) * (1 - image2))
    if mode == "soft_light":
        # The W3C soft-light: image2 darkens below 0.5 and lightens above it towards D(image1).
        lighten = torch.where(
            image1 <= 0.25, ((16 * image1 - 12) * image1 + 4) * image1, torch.sqrt(image1)
        )
        return torch.where(
            image2 <= 0.5,
            image1 - (1 - 2 * image2) * image1 * (1 - image1),
            image1 + (2 * image2 - 1) * (lighten - image1),
        )
    if mode == "difference":
        return image1 - image2
    raise ValueError(f"unknown blend_mode {mode!r}; expected one of {BLEND_MODES}")


def image_blend(
    ctx: NodeContext,
    image1: torch.Tensor,
    image2: torch.Tensor,
    blend_factor: float,
    blend_mode: str,
) -> dict[str, object]:
    if image2.shape[1:3] != image1.shape[1:3]:
        # ComfyUI fits the layer to the base: bicubic, cropped to the base's aspect ratio, its
        # overshoot kept until the blend is clamped.
        size = (image1.shape[2], image1.shape[1])
        image2 = resize_images(image2, *size, "bicubic", "center", clamp=False)
    image2 = repeat_to_batch(image2, image1.shape[0])
    blended = blend_images(image1, image2, blend_mode)
    return {"image": (image1 * (1 - blend_factor) + blended * blend_factor).clamp(0.0, 1.0)}


def gaussian_taps(radius: int, sigma: float) -> torch.Tensor:
    """One axis of ComfyUI's Gaussian: 2r+1 taps on a -1..1 grid (sigma is in radii), summing
    to 1. ComfyUI's square kernel is the outer product of these with themselves."""
    taps = torch.exp(-(torch.linspace(-1, 1, 2 * radius + 1) ** 2) / (2.0 * sigma * sigma))
    return taps / taps.sum()


def gaussian_kernel(radius: int, sigma: float) -> torch.Tensor:
    """ComfyUI's square [2r+1, 2r+1] Gaussian kernel."""
    taps = gaussian_taps(radius, sigma)
    return torch.outer(taps, taps)


def gaussian_blur(image: torch.Tensor, radius: int, sigma: float, input_name: str) -> torch.Tensor:
    """The image convolved with ComfyUI's Gaussian, reflected at its edges. The kernel is
    separable, so two passes of 2r+1 taps replace (2r+1)^2 (30x fewer at radius 31); the sums
    agree with the square kernel's to float rounding."""
    problem = _reflect_problem(input_name, radius, image.shape[2], image.shape[1])
    if problem is not None:
        raise ValueError(problem)
    channels = image.shape[-1]
    taps = gaussian_taps(radius, sigma).to(image.dtype)
    padded = F.pad(image.movedim(-1, 1), (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, taps.expand(channels, 1, 1, -1), groups=channels)
    out = F.conv2d(rows, taps.reshape(-1, 1).expand(channels, 1, -1, 1), groups=channels)
    return out.movedim(1, -1).contiguous()


def _reflect_problem(input_name: str, radius: int, width: int, height: int) -> str | None:
    if radius < min(width, height):
        return None
    return (
        f"{input_name} {radius} reflects the image at its edges, which needs every side longer "
        f"than {radius} pixels; this image is {width}x{height}: use a {input_name} of at most "
        f"{min(width, height) - 1}"
    )


def image_blur(
    ctx: NodeContext, image: torch.Tensor, blur_radius: int, sigma: float
) -> dict[str, object]:
    return {"image": gaussian_blur(image, blur_radius, sigma, "blur_radius")}


def image_sharpen(
    ctx: NodeContext, image: torch.Tensor, sharpen_radius: int, sigma: float, alpha: float
) -> dict[str, object]:
    # ComfyUI's kernel is the Gaussian times -10·alpha with its centre raised so it sums to 1,
    # i.e. (1 + 10·alpha)·identity - 10·alpha·Gaussian: unsharp masking, done with the blur.
    if alpha == 0:
        return {"image": image}
    blurred = gaussian_blur(image, sharpen_radius, sigma, "sharpen_radius")
    amount = 10.0 * alpha
    return {"image": ((1.0 + amount) * image - amount * blurred).clamp(0.0, 1.0)}


def adjust_colors(
    ctx: NodeContext,
    image: torch.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    gamma: float,
) -> dict[str, object]:
    out = image
    if brightness != 1.0:
        out = (out * brightness).clamp(0.0, 1.0)
    if contrast != 1.0:
        mean = _luma(out).mean(dim=(1, 2), keepdim=True).unsqueeze(-1)  # per image
        out = (mean + (out - mean) * contrast).clamp(0.0, 1.0)
    if saturation != 1.0:
        grey = _luma(out).unsqueeze(-1)
        out = (grey + (out - grey) * saturation).clamp(0.0, 1.0)
    if gamma != 1.0:
        out = out.pow(1.0 / gamma)
    return {"image": out}


def _luma(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(LUMA, dtype=image.dtype)
    return (image * weights).sum(dim=-1)


def _filter_cost(radius_input: str, *, copies: int) -> Callable[[CostQuery], Cost]:
    """Blur and Sharpen keep the size; they hold a padded copy and the result meanwhile, and
    refuse a radius the image is too small to reflect."""

    def cost(query: CostQuery) -> Cost:
        image, radius = query.batch("image"), query.integer(radius_input)
        if image is None or radius is None:
            return Cost()
        problem = _reflect_problem(radius_input, radius, image.width, image.height)
        if problem is not None:
            return Cost(refusals=(Refusal(radius_input, problem),))
        return Cost(outputs={"image": image}, host_working_bytes=copies * image.image_bytes)

    return cost


def blend_cost(query: CostQuery) -> Cost:
    image1, image2 = query.batch("image1"), query.batch("image2")
    if image1 is None:
        return Cost()
    # The fitted layer and the blend are image1's size; the resize holds image2's too.
    working = 2 * image1.image_bytes + (image2.image_bytes if image2 is not None else 0)
    return Cost(outputs={"image": image1}, host_working_bytes=working)


_IMAGE = socket("image", SocketType.IMAGE)
_OUT = (Output("image", SocketType.IMAGE),)


NODES = [
    NodeSpec(
        id="image.invert",
        display_name="Invert Image",
        aliases=("ImageInvert",),
        category="image",
        description="1 - each value: a negative.",
        inputs=(_IMAGE,),
        outputs=_OUT,
        function=invert,
    ),
    NodeSpec(
        id="image.adjust_colors",
        display_name="Adjust Colors",
        aliases=("Color Correct", "Brightness Contrast", "Image Adjust"),
        category="image/postprocessing",
        description="Brightness, contrast and saturation as factors (1 keeps the image; 0 gives "
        "black, the image's mean grey, greyscale), then gamma (above 1 lightens the midtones: "
        "x^(1/gamma)). Applied in that order, each clamped to 0..1.",
        inputs=(
            _IMAGE,
            float_input("brightness", 1.0, min=0.0, max=4.0),
            float_input("contrast", 1.0, min=0.0, max=4.0),
            float_input("saturation", 1.0, min=0.0, max=4.0),
            float_input("gamma", 1.0, min=0.1, max=10.0),
        ),
        outputs=_OUT,
        function=adjust_colors,
    ),
    NodeSpec(
        id="image.sharpen",
        display_name="Image Sharpen",
        aliases=("ImageSharpen",),
        category="image/postprocessing",
        description="Unsharp masking with a Gaussian of sharpen_radius pixels; sigma is in "
        "radii, alpha the strength (0 keeps the image).",
        inputs=(
            _IMAGE,
            int_input("sharpen_radius", 1, min=1, max=31),
            float_input("sigma", 1.0, min=0.1, max=10.0),
            float_input("alpha", 1.0, min=0.0, max=5.0),
        ),
        outputs=_OUT,
        function=image_sharpen,
        cost=_filter_cost("sharpen_radius", copies=2),
    ),
    NodeSpec(
        id="image.blur",
        display_name="Image Blur",
        aliases=("ImageBlur",),
        category="image/postprocessing",
        description="Gaussian blur over blur_radius pixels each way; sigma is in radii (large "
        "sigma: nearly a box blur).",
        inputs=(
            _IMAGE,
            int_input("blur_radius", 1, min=1, max=31),
            float_input("sigma", 1.0, min=0.1, max=10.0, step=0.1),
        ),
        outputs=_OUT,
        function=image_blur,
        cost=_filter_cost("blur_radius", copies=2),
    ),
    NodeSpec(
        id="image.blend",
        display_name="Image Blend",
        aliases=("ImageBlend",),
        category="image/postprocessing",
        description="Blends image2 onto image1 with a blend mode, blend_factor of the way "
        "(0 is image1). image2 is fitted to image1's size (bicubic, centre-cropped) and batch.",
        inputs=(
            socket("image1", SocketType.IMAGE),
            socket("image2", SocketType.IMAGE),
            float_input("blend_factor", 0.5, min=0.0, max=1.0),
            enum_input("blend_mode", BLEND_MODES),
        ),
        outputs=_OUT,
        function=image_blend,
        cost=blend_cost,
    ),
]
