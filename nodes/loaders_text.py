"""Text encoder loaders: Load CLIP, Dual CLIP Loader and Triple CLIP Loader (ComfyUI's
CLIPLoader, DualCLIPLoader and TripleCLIPLoader).

Users keep text encoders as separate files in `clip/` or `text_encoders/`: SD 1.x's CLIP-L or
SD 2.x's OpenCLIP ViT-H alone, SDXL's CLIP-L and CLIP-G, SD 3.x's CLIP-L, CLIP-G and T5-XXL
(any of them), FLUX.1's CLIP-L and T5-XXL. The `type` widget says which family the CLIP is
for, as in ComfyUI; within a family each file's role is told from its tensors, so the order
of the files does not matter. stable_diffusion and sdxl go through the CLIP-only loader
(`load_text_encoders`), sd3 and flux through the one that also reads T5
(`load_family_text_encoders`). A file the chosen type cannot take is refused naming the file
and what it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, cast

from latentloom.api import (
    Cost,
    CostQuery,
    DynamicChoices,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    enum_input,
    load_family_text_encoders,
    load_text_encoders,
    text_encoder_role,
)

ClipType = Literal["stable_diffusion", "sdxl", "sd3", "flux"]
CLIP_TYPES = ("stable_diffusion", "sd3", "flux")
DUAL_CLIP_TYPES = ("sdxl", "sd3", "flux")
TAKES = {
    "stable_diffusion": "one CLIP: SD 1.x's CLIP-L or SD 2.x's OpenCLIP ViT-H",
    "sdxl": "CLIP-L and CLIP-G",
}
T5 = "T5-XXL"


def load_clip_files(
    ctx: NodeContext, names: Sequence[str], type: str, allowed: Sequence[str]
) -> dict[str, object]:
    """The files as one CLIP handle of the family `type` names."""
    if type not in allowed:
        raise ValueError(f"type {type!r} is not one of: {', '.join(allowed)}")
    paths = [ctx.folders.resolve("clip", name) for name in names]
    chosen = cast(ClipType, type)
    if chosen == "sd3" or chosen == "flux":
        return {
            "clip": load_family_text_encoders(
                paths, chosen, device=ctx.weights_device, dtype=ctx.dtype
            )
        }
    _refuse_t5(names, paths, chosen)
    return {"clip": load_text_encoders(paths, chosen, device=ctx.weights_device, dtype=ctx.dtype)}


def _refuse_t5(names: Sequence[str], paths: Sequence[Path], type: ClipType) -> None:
    """A T5 file picked with a CLIP-only type (Dual CLIP Loader's default is sdxl)."""
    for name, path in zip(names, paths, strict=True):
        if text_encoder_role(path) == T5:
            raise ValueError(
                f"{name} holds a {T5} text encoder, which type {type} does not take "
                f"({TAKES[type]}); for SD 3.x choose type sd3, for FLUX.1 type flux"
            )


def files_cost(*names: str) -> Callable[[CostQuery], Cost]:
    """The named files' weights, held in the engine's dtype."""

    def cost(query: CostQuery) -> Cost:
        sizes = [query.files.size("clip", str(query.literals.get(name, ""))) or 0 for name in names]
        return Cost(weights_bytes=sum(query.weights(size) for size in sizes))

    return cost


def load_clip(ctx: NodeContext, text_encoder: str, type: str) -> dict[str, object]:
    return load_clip_files(ctx, (text_encoder,), type, CLIP_TYPES)


def load_dual_clip(
    ctx: NodeContext, text_encoder_1: str, text_encoder_2: str, type: str
) -> dict[str, object]:
    return load_clip_files(ctx, (text_encoder_1, text_encoder_2), type, DUAL_CLIP_TYPES)


def load_triple_clip(
    ctx: NodeContext, text_encoder_1: str, text_encoder_2: str, text_encoder_3: str
) -> dict[str, object]:
    return load_clip_files(ctx, (text_encoder_1, text_encoder_2, text_encoder_3), "sd3", ("sd3",))


NODES = [
    NodeSpec(
        id="loaders.clip",
        display_name="Load CLIP",
        aliases=("CLIPLoader", "Load CLIP"),
        category="loaders",
        description="Loads one text encoder saved on its own (clip or text_encoders folder), "
        "in the original layout or transformers'. type stable_diffusion: SD 1.x's CLIP-L or "
        "SD 2.x's OpenCLIP ViT-H. type sd3: any one of SD 3.x's CLIP-L, CLIP-G or T5-XXL (the "
        "others contribute zeros, e.g. T5 alone). type flux: FLUX.1's T5-XXL alone (CLIP-L's "
        "pooled vector becomes zeros).",
        inputs=(
            enum_input("text_encoder", DynamicChoices("clip")),
            enum_input("type", CLIP_TYPES, tooltip="The family the text encoder is for"),
        ),
        outputs=(Output("clip", SocketType.CLIP),),
        function=load_clip,
        cost=files_cost("text_encoder"),
    ),
    NodeSpec(
        id="loaders.dual_clip",
        display_name="Dual CLIP Loader",
        aliases=("DualCLIPLoader", "Dual CLIP Loader"),
        category="loaders",
        description="Loads two text encoders from separate files (clip or text_encoders "
        "folder), in the original layout or transformers'. type sdxl: CLIP-L and OpenCLIP bigG "
        "(CLIP-G). type sd3: two of SD 3.x's CLIP-L, CLIP-G and T5-XXL. type flux: FLUX.1's "
        "CLIP-L and T5-XXL. Each file's role is told from its tensors, so their order does "
        "not matter.",
        inputs=(
            enum_input("text_encoder_1", DynamicChoices("clip")),
            enum_input("text_encoder_2", DynamicChoices("clip")),
            enum_input("type", DUAL_CLIP_TYPES, tooltip="The family the text encoders are for"),
        ),
        outputs=(Output("clip", SocketType.CLIP),),
        function=load_dual_clip,
        cost=files_cost("text_encoder_1", "text_encoder_2"),
    ),
    NodeSpec(
        id="loaders.triple_clip",
        display_name="Triple CLIP Loader",
        aliases=("TripleCLIPLoader", "Triple CLIP Loader"),
        category="loaders",
        description="Loads SD 3.x's three text encoders from separate files (clip or "
        "text_encoders folder): CLIP-L, CLIP-G and T5-XXL, in the original layout or "
        "transformers'. Each file's role is told from its tensors, so their order does not "
        "matter. For fewer of them use Dual CLIP Loader or Load CLIP with type sd3.",
        inputs=(
            enum_input("text_encoder_1", DynamicChoices("clip"), tooltip="CLIP-L, usually"),
            enum_input("text_encoder_2", DynamicChoices("clip"), tooltip="CLIP-G, usually"),
            enum_input("text_encoder_3", DynamicChoices("clip"), tooltip="T5-XXL, usually"),
        ),
        outputs=(Output("clip", SocketType.CLIP),),
        function=load_triple_clip,
        cost=files_cost("text_encoder_1", "text_encoder_2", "text_encoder_3"),
    ),
]
