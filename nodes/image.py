"""Pixels: VAE decode/encode, loading, saving, previewing and animating images."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from latentloom.engine.context import NodeContext
from latentloom.engine.folders import INPUTS
from latentloom.images import (
    from_pil,
    next_free_path,
    png_text_chunks,
    save_animation,
    to_pil,
    write_png,
)
from latentloom.models.handles import Latent, Vae
from latentloom.node import (
    DynamicChoices,
    NodeSpec,
    Output,
    SocketType,
    boolean_input,
    enum_input,
    float_input,
    socket,
    string_input,
)
from latentloom.node_costs import (
    load_image_cost,
    save_images_cost,
    vae_decode_cost,
    vae_encode_cost,
)
from latentloom.vae import decode, encode

PREVIEW_SUBFOLDER = "previews"


def vae_decode(ctx: NodeContext, vae: Vae, latent: Latent) -> dict[str, object]:
    return {"image": decode(vae, latent.samples, check_cancelled=ctx.check_cancelled)}


def vae_encode(ctx: NodeContext, vae: Vae, image: torch.Tensor) -> dict[str, object]:
    return {"latent": Latent(encode(vae, image), vae.family)}


def load_image(ctx: NodeContext, image: str) -> dict[str, object]:
    with Image.open(ctx.folders.resolve(INPUTS, image)) as opened:
        return {"image": from_pil(opened)}


def _saved(path: Path, root: Path) -> dict[str, str]:
    relative = path.relative_to(root)
    return {"filename": relative.name, "subfolder": relative.parent.as_posix().strip(".")}


def _save_pngs(
    ctx: NodeContext, images: torch.Tensor, subfolder: str, prefix: str
) -> list[dict[str, str]]:
    """Each image as a PNG carrying the workflow, under the output folder; their report entries.

    The workflow goes in three text chunks (ours, ComfyUI's prompt and editor graph), made
    once for the batch.
    """
    root = ctx.settings.output_dir
    chunks = png_text_chunks(ctx.workflow_json)
    saved = []
    for picture in to_pil(images):
        path = next_free_path(root / subfolder, prefix, ".png")
        write_png(picture, path, chunks)
        saved.append(_saved(path, root))
    return saved


def save_image(ctx: NodeContext, images: torch.Tensor, filename_prefix: str) -> dict[str, object]:
    return {"report": {"images": _save_pngs(ctx, images, "", filename_prefix)}}


def preview_image(ctx: NodeContext, images: torch.Tensor) -> dict[str, object]:
    return {"report": {"images": _save_pngs(ctx, images, PREVIEW_SUBFOLDER, "preview")}}


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
    return {"report": {"animations": [_saved(path, root)]}}


_IMAGES = socket("images", SocketType.IMAGE)

NODES = [
    NodeSpec(
        id="image.vae_decode",
        display_name="VAE Decode",
        aliases=("VAEDecode",),
        category="image",
        inputs=(socket("vae", SocketType.VAE), socket("latent", SocketType.LATENT)),
        outputs=(Output("image", SocketType.IMAGE),),
        function=vae_decode,
        cost=vae_decode_cost,
    ),
    NodeSpec(
        id="image.vae_encode",
        display_name="VAE Encode",
        aliases=("VAEEncode",),
        category="image",
        inputs=(socket("vae", SocketType.VAE), socket("image", SocketType.IMAGE)),
        outputs=(Output("latent", SocketType.LATENT),),
        function=vae_encode,
        cost=vae_encode_cost,
    ),
    NodeSpec(
        id="image.load",
        display_name="Load Image",
        aliases=("LoadImage",),
        category="image",
        description="Loads an image from the input folder.",
        inputs=(enum_input("image", DynamicChoices(INPUTS)),),
        outputs=(Output("image", SocketType.IMAGE),),
        function=load_image,
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
