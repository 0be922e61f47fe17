"""Latents on disk: Save Latent and Load Latent, in ComfyUI's `.latent` format.

Files hold unscaled latents, as ComfyUI's do (see `latentloom.latent_file`), so a latent saved
here loads in ComfyUI and the other way round. Saved files go to the `latents` folder under the
output folder; Load Latent lists the `.latent` files in the input folder, as ComfyUI does.
"""

from __future__ import annotations

from latentloom.api import (
    INPUT_LATENTS,
    LATENT_FILE_SUFFIX,
    DiffusionModel,
    DynamicChoices,
    Latent,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    enum_input,
    next_free_path,
    read_latent_file,
    socket,
    string_input,
    to_scaled,
    write_latent_file,
)

LATENT_SUBFOLDER = "latents"


def save_latent(ctx: NodeContext, latent: Latent, filename_prefix: str) -> dict[str, object]:
    root = ctx.settings.output_dir
    path = next_free_path(root / LATENT_SUBFOLDER, filename_prefix, LATENT_FILE_SUFFIX)
    write_latent_file(path, latent.samples, latent.family, ctx.workflow_json)
    return {"report": {"latents": [{"filename": path.name, "subfolder": LATENT_SUBFOLDER}]}}


def load_latent(ctx: NodeContext, latent: str, model: DiffusionModel | None) -> dict[str, object]:
    contents = read_latent_file(ctx.folders.resolve(INPUT_LATENTS, latent))
    # The model says which VAE scale the latent belongs to; else the family the file records
    # (files we wrote), else SD 1.x's, ComfyUI's own assumption for its legacy files.
    family = model.family if model is not None else contents.family
    return {"latent": Latent(to_scaled(contents.samples, family), family)}


NODES = [
    NodeSpec(
        id="latent.save",
        display_name="Save Latent",
        aliases=("SaveLatent",),
        category="latent",
        description="Saves the latent batch as a .latent file (ComfyUI's format: unscaled "
        "latents) in the latents folder under the output folder.",
        inputs=(socket("latent", SocketType.LATENT), string_input("filename_prefix", "latentloom")),
        outputs=(),
        function=save_latent,
        output_node=True,
    ),
    NodeSpec(
        id="latent.load",
        display_name="Load Latent",
        aliases=("LoadLatent",),
        category="latent",
        description="Loads a .latent file (ComfyUI's format) from the input folder. Connect a "
        "model for SDXL latents from ComfyUI: its files do not say which model family made "
        "them, and SD 1.x is assumed.",
        inputs=(
            enum_input("latent", DynamicChoices(INPUT_LATENTS)),
            socket("model", SocketType.MODEL, optional=True),
        ),
        outputs=(Output("latent", SocketType.LATENT),),
        function=load_latent,
    ),
]
