"""Enlarging: upscale models (ESRGAN and the rest of spandrel's set) and tiled VAE decode/encode.

Load Upscale Model reads `upscale_models/` (ComfyUI) or `ESRGAN/` / `RealESRGAN/` (A1111)
safetensors files; Upscale Image (using Model) runs it tile by tile with blended overlaps,
shrinking the tile when the cost budget says one of the asked size won't fit. The tiled VAE
nodes take ComfyUI's inputs; the temporal ones only matter to video VAEs, which we don't
have, so any value leaves an image unchanged.
"""

from __future__ import annotations

import torch

from latentloom.api import (
    UPSCALE_OVERLAP,
    UPSCALE_TILE,
    DynamicChoices,
    Input,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    UpscaleModel,
    Vae,
    enum_input,
    int_input,
    load_upscale_model,
    socket,
    upscale_images,
    upscale_model_loader_cost,
    upscale_tile,
    upscale_with_model_cost,
    upscaled_side_refusal,
    vae_decode_tiled,
    vae_decode_tiled_cost,
    vae_encode_tiled,
    vae_encode_tiled_cost,
)

_TEMPORAL = "Frames per tile for video VAEs; an image has one frame, so no effect here"


def load_upscale_model_node(ctx: NodeContext, model_name: str) -> dict[str, object]:
    model = load_upscale_model(
        ctx.folders.resolve("upscale_models", model_name),
        device=ctx.weights_device,
        dtype=ctx.dtype,
    )
    detected = {
        "architecture": model.architecture,
        "scale": model.scale,
        "tags": list(model.tags),
        "parameters": model.parameters,
    }
    return {"upscale_model": model, "report": {"detection": [detected]}}


def upscale_with_model(
    ctx: NodeContext, upscale_model: UpscaleModel, image: torch.Tensor, tile_size: int, overlap: int
) -> dict[str, object]:
    count, height, width = image.shape[:3]
    refusal = upscaled_side_refusal(width, height, upscale_model.scale)
    if refusal is not None:
        raise ValueError(f"input {refusal.input!r}: {refusal.message}")
    out_bytes = count * height * width * upscale_model.scale**2 * 3 * 4
    left = None if ctx.memory_left is None else ctx.memory_left - 2 * out_bytes
    element = torch.empty(0, dtype=upscale_model.placement[1]).element_size()
    tile = upscale_tile(tile_size, upscale_model.scale, width, height, left, element)
    upscaled = upscale_images(
        upscale_model,
        image,
        tile=tile,
        overlap=min(overlap, tile // 4),
        check_cancelled=ctx.check_cancelled,
        progress=ctx.progress,
    )
    if tile == tile_size:
        return {"image": upscaled}
    note = {"tile_size": tile, "asked": tile_size, "reason": "the budget's memory"}
    return {"image": upscaled, "report": {"tiled": [note]}}


def vae_decode_tiled_node(
    ctx: NodeContext,
    vae: Vae,
    latent: Latent,
    tile_size: int,
    overlap: int,
    temporal_size: int,
    temporal_overlap: int,
) -> dict[str, object]:
    image = vae_decode_tiled(
        vae,
        latent.samples,
        tile_size=tile_size,
        overlap=overlap,
        family=latent.family,
        check_cancelled=ctx.check_cancelled,
        progress=ctx.progress,
    )
    return {"image": image}


def vae_encode_tiled_node(
    ctx: NodeContext,
    vae: Vae,
    image: torch.Tensor,
    tile_size: int,
    overlap: int,
    temporal_size: int,
    temporal_overlap: int,
) -> dict[str, object]:
    samples = vae_encode_tiled(
        vae,
        image,
        tile_size=tile_size,
        overlap=overlap,
        check_cancelled=ctx.check_cancelled,
        progress=ctx.progress,
    )
    return {"latent": Latent(samples, vae.family)}


def _temporal_inputs() -> tuple[Input, Input]:
    return (
        int_input("temporal_size", 64, min=8, max=4096, step=4, tooltip=_TEMPORAL),
        int_input("temporal_overlap", 8, min=4, max=4096, step=4, tooltip=_TEMPORAL),
    )


_OVERLAP_TOOLTIP = "Pixels neighbouring tiles share, blended; at most a quarter of the tile"

NODES = [
    NodeSpec(
        id="loaders.upscale_model",
        display_name="Load Upscale Model",
        aliases=("UpscaleModelLoader", "Load Upscale Model"),
        category="loaders",
        description="Loads an upscaler (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, ...; the "
        "architecture is detected from the weights) from a .safetensors file in "
        "upscale_models/. Pickle files (.pth) are refused: convert them once.",
        inputs=(enum_input("model_name", DynamicChoices("upscale_models")),),
        outputs=(Output("upscale_model", SocketType.UPSCALE_MODEL),),
        function=load_upscale_model_node,
        cost=upscale_model_loader_cost,
    ),
    NodeSpec(
        id="image.upscale_with_model",
        display_name="Upscale Image (using Model)",
        aliases=("ImageUpscaleWithModel", "Upscale Image (using Model)"),
        category="image/upscaling",
        description="Enlarges images with an upscale model, tile_size pixels at a time with "
        "blended overlaps; a smaller tile is used when the memory budget needs one.",
        inputs=(
            socket("upscale_model", SocketType.UPSCALE_MODEL),
            socket("image", SocketType.IMAGE),
            int_input(
                "tile_size",
                UPSCALE_TILE,
                min=32,
                max=4096,
                step=32,
                tooltip="Input pixels per tile side: larger is faster and needs more memory",
            ),
            int_input(
                "overlap", UPSCALE_OVERLAP, min=0, max=1024, step=8, tooltip=_OVERLAP_TOOLTIP
            ),
        ),
        outputs=(Output("image", SocketType.IMAGE),),
        function=upscale_with_model,
        cost=upscale_with_model_cost,
    ),
    NodeSpec(
        id="image.vae_decode_tiled",
        display_name="VAE Decode (Tiled)",
        aliases=("VAEDecodeTiled", "VAE Decode (Tiled)"),
        category="image",
        description="VAE Decode in overlapping tiles: far less memory for large images, a "
        "close but not identical result (each tile sees only itself).",
        inputs=(
            socket("vae", SocketType.VAE),
            socket("latent", SocketType.LATENT),
            int_input("tile_size", 512, min=64, max=4096, step=32),
            int_input("overlap", 64, min=0, max=4096, step=32, tooltip=_OVERLAP_TOOLTIP),
            *_temporal_inputs(),
        ),
        outputs=(Output("image", SocketType.IMAGE),),
        function=vae_decode_tiled_node,
        cost=vae_decode_tiled_cost,
    ),
    NodeSpec(
        id="image.vae_encode_tiled",
        display_name="VAE Encode (Tiled)",
        aliases=("VAEEncodeTiled", "VAE Encode (Tiled)"),
        category="image",
        description="VAE Encode in overlapping tiles: far less memory for large images.",
        inputs=(
            socket("vae", SocketType.VAE),
            socket("image", SocketType.IMAGE),
            int_input("tile_size", 512, min=64, max=4096, step=64),
            int_input("overlap", 64, min=0, max=4096, step=32, tooltip=_OVERLAP_TOOLTIP),
            *_temporal_inputs(),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=vae_encode_tiled_node,
        cost=vae_encode_tiled_cost,
    ),
]
