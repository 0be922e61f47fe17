"""IP-Adapter: an image as a prompt. CLIP vision loader and encoder, IP-Adapter loader and apply.

Apply IP-Adapter (ComfyUI_IPAdapter_plus's IPAdapter Advanced, the parts we implement)
returns a new MODEL that attends to the image's tokens beside the prompt in
every cross-attention layer while sampling (the UNet itself is shared and never changed), with
a weight and the part of the schedule (start_at .. end_at) where it acts. It takes the CLIP
vision model and the image itself, as the community's IPAdapter Advanced does, because plus
adapters also need the encoding of a black image for the negative prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, cast

import torch

from latentloom.api import (
    CLIP_VISION_CROPS,
    IPADAPTER_COMBINE_EMBEDS,
    ClipVision,
    Cost,
    CostQuery,
    DiffusionModel,
    DynamicChoices,
    IpAdapter,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    apply_ip_adapter,
    clip_vision_encode,
    enum_input,
    float_input,
    load_clip_vision,
    load_ip_adapter,
    socket,
)


def _file_cost(kind: str, name: str) -> Callable[[CostQuery], Cost]:
    """A loader's cost: the file's weights, held in the engine's dtype."""

    def cost(query: CostQuery) -> Cost:
        size = query.files.size(kind, str(query.literals.get(name, ""))) or 0
        return Cost(weights_bytes=query.weights(size))

    return cost


def load_clip_vision_node(ctx: NodeContext, clip_name: str) -> dict[str, object]:
    path = ctx.folders.resolve("clip_vision", clip_name)
    clip_vision = load_clip_vision(path, device=ctx.weights_device, dtype=ctx.dtype)
    detection = {"tower": clip_vision.name, "image_size": clip_vision.image_size}
    return {"clip_vision": clip_vision, "report": {"detection": [detection]}}


def clip_vision_encode_node(
    ctx: NodeContext, clip_vision: ClipVision, image: torch.Tensor, crop: str
) -> dict[str, object]:
    if crop not in CLIP_VISION_CROPS:
        raise ValueError(f"crop {crop!r} is not one of: {', '.join(CLIP_VISION_CROPS)}")
    chosen = cast(Literal["center", "none"], crop)
    return {"clip_vision_output": clip_vision_encode(clip_vision, image, chosen)}


def load_ip_adapter_node(ctx: NodeContext, ipadapter_file: str) -> dict[str, object]:
    path = ctx.folders.resolve("ipadapter", ipadapter_file)
    adapter = load_ip_adapter(path, device=ctx.weights_device, dtype=ctx.dtype)
    detection = {"kind": adapter.kind, "layers": adapter.layer_count}
    return {"ipadapter": adapter, "report": {"detection": [detection]}}


def apply_ip_adapter_node(
    ctx: NodeContext,
    model: DiffusionModel,
    ipadapter: IpAdapter,
    image: torch.Tensor,
    weight: float,
    start_at: float,
    end_at: float,
    combine_embeds: str = "concat",
    image_negative: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    clip_vision: ClipVision | None = None,
) -> dict[str, object]:
    if clip_vision is None:
        raise ValueError(
            "Apply IP-Adapter needs clip_vision: connect a Load CLIP Vision node with the "
            "model the adapter was trained with (ComfyUI's IPAdapter Unified Loader bundles it "
            "with the adapter; our IP-Adapter Loader loads the adapter alone)"
        )
    if attn_mask is not None:
        raise ValueError(
            "Apply IP-Adapter: attn_mask is not implemented; the adapter acts on the whole "
            "image. Disconnect it, or restrict the prompt with a conditioning mask instead"
        )
    if start_at > end_at:
        raise ValueError(
            f"start_at ({start_at}) is after end_at ({end_at}): the adapter would never act; "
            "set start_at <= end_at"
        )
    patched = apply_ip_adapter(
        model,
        ipadapter,
        clip_vision,
        image,
        weight,
        start_at,
        end_at,
        negative=image_negative,
        combine=combine_embeds,
    )
    return {"model": patched}


NODES = [
    NodeSpec(
        id="clip_vision.loader",
        display_name="Load CLIP Vision",
        aliases=("CLIPVisionLoader", "Load CLIP Vision"),
        category="loaders",
        description="Loads a CLIP vision model from clip_vision/ (transformers' "
        "CLIPVisionModelWithProjection safetensors: OpenAI ViT-L/14, OpenCLIP ViT-H/14 or "
        "ViT-bigG/14; the tower is read from the weights' shapes).",
        inputs=(enum_input("clip_name", DynamicChoices("clip_vision")),),
        outputs=(Output("clip_vision", SocketType.CLIP_VISION),),
        function=load_clip_vision_node,
        cost=_file_cost("clip_vision", "clip_name"),
    ),
    NodeSpec(
        id="clip_vision.encode",
        display_name="CLIP Vision Encode",
        aliases=("CLIPVisionEncode",),
        category="conditioning",
        description="Encodes images with a CLIP vision model: the projected image embedding "
        "and the last and penultimate hidden states. crop center scales the short side to the "
        "model's size and keeps the middle; none squashes the whole image.",
        inputs=(
            socket("clip_vision", SocketType.CLIP_VISION),
            socket("image", SocketType.IMAGE),
            enum_input("crop", CLIP_VISION_CROPS),
        ),
        outputs=(Output("clip_vision_output", SocketType.CLIP_VISION_OUTPUT),),
        function=clip_vision_encode_node,
    ),
    NodeSpec(
        id="ipadapter.loader",
        display_name="IP-Adapter Loader",
        aliases=("IPAdapterModelLoader", "IPAdapter Model Loader", "Load IP-Adapter"),
        category="loaders",
        description="Loads an IP-Adapter from ipadapter/ (h94's SD 1.5 and SDXL files: "
        "IP-Adapter, Plus, Plus Face, Full Face; FaceID files are refused).",
        inputs=(enum_input("ipadapter_file", DynamicChoices("ipadapter")),),
        outputs=(Output("ipadapter", SocketType.IPADAPTER),),
        function=load_ip_adapter_node,
        cost=_file_cost("ipadapter", "ipadapter_file"),
    ),
    NodeSpec(
        id="ipadapter.apply",
        display_name="Apply IP-Adapter",
        aliases=("IPAdapterAdvanced", "IPAdapter Advanced", "IPAdapter"),
        category="ipadapter",
        description="Makes the model attend to an image as well as the prompt: the image is "
        "encoded with the CLIP vision model (center crop) and projected to tokens the "
        "adapter adds to every cross-attention layer, scaled by weight, between start_at and "
        "end_at of the schedule. Several images are kept side by side (concat) or combined "
        "into one (combine_embeds); image_negative, if given, is what the negative prompt "
        "sees instead of a blank image. Weight 0 changes nothing. (IPAdapter Advanced's "
        "weight types other than linear, embeds scaling other than V only and attention "
        "masks are not implemented.)",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("ipadapter", SocketType.IPADAPTER),
            socket("image", SocketType.IMAGE),
            float_input("weight", 1.0, min=-1.0, max=5.0, step=0.05),
            float_input("start_at", 0.0, min=0.0, max=1.0, step=0.001),
            float_input("end_at", 1.0, min=0.0, max=1.0, step=0.001),
            enum_input("combine_embeds", IPADAPTER_COMBINE_EMBEDS, default="concat"),
            socket(
                "image_negative",
                SocketType.IMAGE,
                optional=True,
                tooltip="what the negative prompt's rows see (default: a blank image)",
            ),
            socket("attn_mask", SocketType.MASK, optional=True, tooltip="not implemented yet"),
            socket(
                "clip_vision",
                SocketType.CLIP_VISION,
                optional=True,
                tooltip="required: the CLIP vision model the adapter was trained with",
            ),
        ),
        outputs=(Output("model", SocketType.MODEL),),
        function=apply_ip_adapter_node,
    ),
]
