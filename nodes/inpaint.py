"""Inpainting and outpainting: encode with a mask, attach a noise mask, pad for outpainting.

A LATENT's `noise_mask` tells every sampler where it may change the latent (1) and where the
result must stay the source (0); it is kept at the mask's own resolution and resized to the
latent's when sampling. VAE Encode (for Inpaint) also greys out the masked pixels before
encoding, so the sampler does not start from what the user wanted gone (use it at denoise 1,
as in ComfyUI); Set Latent Noise Mask keeps the pixels and suits img2img-style partial
denoising. Pad Image for Outpaint makes the canvas and the mask an outpaint needs; its output
then goes through either of the two.
"""

from __future__ import annotations

import dataclasses

import torch

from latentloom.api import (
    MAX_SIDE,
    Batch,
    Cost,
    CostQuery,
    Input,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    Refusal,
    SocketType,
    Vae,
    grow_mask_box,
    inpaint_pixels,
    int_input,
    mask_batch,
    pad_for_outpaint,
    socket,
    vae_encode,
    vae_encode_cost,
)

MAX_GROW = 64  # as ComfyUI: the grow only needs to bridge the seam in latent space


def vae_encode_for_inpaint(
    ctx: NodeContext, vae: Vae, image: torch.Tensor, mask: torch.Tensor, grow_mask_by: int
) -> dict[str, object]:
    downscale = vae.family.downscale
    if image.shape[1] < downscale or image.shape[2] < downscale:
        raise ValueError(
            f"image {image.shape[2]}x{image.shape[1]} is smaller than one latent pixel "
            f"({downscale}x{downscale})"
        )
    pixels, resized = inpaint_pixels(image, mask, downscale)
    noise_mask = grow_mask_box(resized, grow_mask_by)
    return {"latent": Latent(vae_encode(vae, pixels), vae.family, noise_mask)}


def set_latent_noise_mask(
    ctx: NodeContext, latent: Latent, mask: torch.Tensor
) -> dict[str, object]:
    batch = latent.samples.shape[0]
    masks = mask_batch(mask)
    if masks.shape[0] not in (1, batch):
        raise ValueError(
            f"mask holds {masks.shape[0]} masks for a batch of {batch} latents; give one mask, "
            "or one per latent"
        )
    return {"latent": dataclasses.replace(latent, noise_mask=masks)}


def pad_image_for_outpaint(
    ctx: NodeContext,
    image: torch.Tensor,
    left: int,
    top: int,
    right: int,
    bottom: int,
    feathering: int,
) -> dict[str, object]:
    height, width = image.shape[1] + top + bottom, image.shape[2] + left + right
    if max(height, width) > MAX_SIDE:
        raise ValueError(_too_big(width, height))
    padded, mask = pad_for_outpaint(image, left, top, right, bottom, feathering)
    return {"image": padded, "mask": mask}


def _too_big(width: int, height: int) -> str:
    return (
        f"the padded image would be {width}x{height}; the most is {MAX_SIDE} per side: "
        "pad less or scale the image down first"
    )


def vae_encode_for_inpaint_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    if image is None:
        return Cost()
    # Cut to whole latent pixels before encoding, as the node does.
    cut = Batch(image.width // 8 * 8, image.height // 8 * 8, image.count, image.origin)
    return vae_encode_cost(dataclasses.replace(query, upstream={"image": cut}))


def set_latent_noise_mask_cost(query: CostQuery) -> Cost:
    latent = query.batch("latent")
    return Cost(outputs={"latent": latent}) if latent is not None else Cost()


def pad_image_for_outpaint_cost(query: CostQuery) -> Cost:
    image = query.batch("image")
    sides = [query.integer(name) for name in ("left", "top", "right", "bottom")]
    if image is None or None in sides:
        return Cost()
    left, top, right, bottom = (side or 0 for side in sides)
    width, height = image.width + left + right, image.height + top + bottom
    if max(width, height) > MAX_SIDE:
        return Cost(refusals=(Refusal("image", _too_big(width, height)),))
    padded = Batch(width, height, image.count, query.node_id)
    return Cost(outputs={"image": padded}, host_working_bytes=4 * width * height)  # the mask


def _side(name: str) -> Input:
    """Pixels added on one side: whole latent pixels, as ComfyUI's step of 8."""
    return int_input(name, 0, min=0, max=MAX_SIDE, step=8)


NODES = [
    NodeSpec(
        id="latent.vae_encode_for_inpaint",
        display_name="VAE Encode (for Inpaint)",
        aliases=("VAEEncodeForInpaint", "VAE Encode (for Inpainting)"),
        category="latent/inpaint",
        description="Encodes the image with the masked area set to grey, and attaches the mask, "
        "grown by `grow_mask_by` pixels to hide the seam, as the latent's noise mask. The image "
        "is cut (centred) to a multiple of 8 pixels. Sample at denoise 1.",
        inputs=(
            socket("vae", SocketType.VAE),
            socket("image", SocketType.IMAGE),
            socket("mask", SocketType.MASK),
            int_input("grow_mask_by", 6, min=0, max=MAX_GROW),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=vae_encode_for_inpaint,
        cost=vae_encode_for_inpaint_cost,
    ),
    NodeSpec(
        id="latent.set_noise_mask",
        display_name="Set Latent Noise Mask",
        aliases=("SetLatentNoiseMask",),
        category="latent/inpaint",
        description="The latent with `mask` as its noise mask: samplers change only where the "
        "mask is above 0 and keep the source where it is 0.",
        inputs=(socket("latent", SocketType.LATENT), socket("mask", SocketType.MASK)),
        outputs=(Output("latent", SocketType.LATENT),),
        function=set_latent_noise_mask,
        cost=set_latent_noise_mask_cost,
    ),
    NodeSpec(
        id="image.pad_for_outpaint",
        display_name="Pad Image for Outpaint",
        aliases=("ImagePadForOutpaint", "Pad Image for Outpainting"),
        category="image",
        description="Grows the canvas by the given sides with grey and returns the mask of the "
        "new area (1), feathered into the old image over `feathering` pixels.",
        inputs=(
            socket("image", SocketType.IMAGE),
            _side("left"),
            _side("top"),
            _side("right"),
            _side("bottom"),
            int_input("feathering", 40, min=0, max=MAX_SIDE),
        ),
        outputs=(Output("image", SocketType.IMAGE), Output("mask", SocketType.MASK)),
        function=pad_image_for_outpaint,
        cost=pad_image_for_outpaint_cost,
    ),
]
