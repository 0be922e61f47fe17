"""Pixels: VAE decode/encode, loading, saving, previewing and animating images."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from latentloom.api import (
    INPUTS,
    Batch,
    DynamicChoices,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    Vae,
    alpha_to_mask,
    auto_decode_tile,
    boolean_input,
    enum_input,
    float_input,
    from_pil,
    load_image_cost,
    next_free_path,
    save_animation,
    save_images_cost,
    save_pngs,
    saved_entry,
    socket,
    string_input,
    to_pil,
    vae_decode,
    vae_decode_cost,
    vae_decode_tiled,
    vae_encode,
    vae_encode_cost,
)

PREVIEW_SUBFOLDER = "previews"
AUTO_TILE_OVERLAP = 64  # pixels, VAE Decode (Tiled)'s default


def vae_decode_node(ctx: NodeContext, vae: Vae, latent: Latent) -> dict[str, object]:
    count, _, height, width = latent.samples.shape
    scale = vae.family.downscale
    size = Batch(width * scale, height * scale, count, ctx.node_id)
    tile = auto_decode_tile(size, ctx.memory_left)
    if tile is None:
        image = vae_decode(
            vae, latent.samples, family=latent.family, check_cancelled=ctx.check_cancelled
        )
        return {"image": image}
    # The budget's estimate found no room for a full decode: tiles, as its cost assumed.
    overlap = min(AUTO_TILE_OVERLAP, tile // 4)
    image = vae_decode_tiled(
        vae,
        latent.samples,
        tile_size=tile,
        overlap=overlap,
        family=latent.family,
        check_cancelled=ctx.check_cancelled,
        progress=ctx.progress,
    )
    note = {
        "tile_size": tile,
        "overlap": overlap,
        "reason": f"a full decode of {size.width}x{size.height} would not fit the memory budget "
        f"({(ctx.memory_left or 0) / 2**20:.1f} MiB left for it)",
    }
    return {"image": image, "report": {"tiled": [note]}}


def vae_encode_node(ctx: NodeContext, vae: Vae, image: torch.Tensor) -> dict[str, object]:
    return {"latent": Latent(vae_encode(vae, image), vae.family)}


def load_image(ctx: NodeContext, image: str) -> dict[str, object]:
    with Image.open(ctx.folders.resolve(INPUTS, image)) as opened:
        pixels = from_pil(opened)
        # ComfyUI's mask: 1 - alpha, so transparent (painted-out) pixels are the ones to change;
        # a palette image's transparent index counts as alpha; no alpha: nothing to change.
        if "A" in opened.getbands() or "transparency" in opened.info:
            alpha = np.asarray(opened.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
            mask = alpha_to_mask(torch.from_numpy(alpha.copy())).unsqueeze(0)
        else:
            mask = torch.zeros(pixels.shape[:-1], dtype=torch.float32)
    return {"image": pixels, "mask": mask}


def save_image(ctx: NodeContext, images: torch.Tensor, filename_prefix: str) -> dict[str, object]:
    return {
        "report": {
            "images": save_pngs(
                images, ctx.settings.output_dir, "", filename_prefix, ctx.workflow_json
            )
        }
    }


def preview_image(ctx: NodeContext, images: torch.Tensor) -> dict[str, object]:
    return {
        "report": {
            "images": save_pngs(
                images, ctx.settings.output_dir, PREVIEW_SUBFOLDER, "preview", ctx.workflow_json
            )
        }
    }


def save_animation_node(
    ctx: NodeContext,
    images: torch.Tensor,
    filename_prefix: str,
    fps: float,
    format: str,
    loop: bool,
) -> dict[str, object]:
    root = ctx.settings.output_dir
    path = next_free_path(root, filename_prefix, f".{format}")
    save_animation(to_pil(images), path, fps=fps, format=format, loop=loop)  # type: ignore[arg-type]
    return {"report": {"animations": [saved_entry(path, root)]}}


_IMAGES = socket("images", SocketType.IMAGE)

NODES = [
    NodeSpec(
        id="image.vae_decode",
        display_name="VAE Decode",
        aliases=("VAEDecode",),
        category="image",
        inputs=(socket("vae", SocketType.VAE), socket("latent", SocketType.LATENT)),
        outputs=(Output("image", SocketType.IMAGE),),
        function=vae_decode_node,
        cost=vae_decode_cost,
    ),
    NodeSpec(
        id="image.vae_encode",
        display_name="VAE Encode",
        aliases=("VAEEncode",),
        category="image",
        inputs=(socket("vae", SocketType.VAE), socket("image", SocketType.IMAGE)),
        outputs=(Output("latent", SocketType.LATENT),),
        function=vae_encode_node,
        cost=vae_encode_cost,
    ),
    NodeSpec(
        id="image.load",
        display_name="Load Image",
        aliases=("LoadImage",),
        category="image",
        description="Loads an image from the input folder. Its mask is 1 - alpha (transparent "
        "pixels are 1, the area to inpaint), all zeros when the image has no alpha.",
        inputs=(enum_input("image", DynamicChoices(INPUTS)),),
        outputs=(Output("image", SocketType.IMAGE), Output("mask", SocketType.MASK)),
        function=load_image,
        version=2,  # adds the mask output
        cost=load_image_cost,
    ),
    NodeSpec(
        id="image.save",
        display_name="Save Image",
        aliases=("SaveImage",),
        category="image",
        description="Saves PNGs in the output folder, each carrying the workflow that made it.",
        inputs=(_IMAGES, string_input("filename_prefix", "latentloom")),
        outputs=(),
        function=save_image,
        cost=save_images_cost,
        output_node=True,
    ),
    NodeSpec(
        id="image.preview",
        display_name="Preview Image",
        aliases=("PreviewImage",),
        category="image",
        description="Shows images without keeping them among the saved outputs.",
        inputs=(_IMAGES,),
        outputs=(),
        function=preview_image,
        cost=save_images_cost,
        output_node=True,
    ),
    NodeSpec(
        id="image.save_animation",
        display_name="Save Animation",
        category="image",
        description="Saves a batch of frames (e.g. a latent morph) as an animated WebP or GIF.",
        inputs=(
            _IMAGES,
            string_input("filename_prefix", "latentloom_animation"),
            float_input("fps", 8.0, min=0.1, max=60.0, step=0.1),
            enum_input("format", ("webp", "gif")),
            boolean_input("loop", True),
        ),
        outputs=(),
        function=save_animation_node,
        cost=save_images_cost,
        output_node=True,
    ),
]
