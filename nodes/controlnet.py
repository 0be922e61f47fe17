"""ControlNet and T2I-Adapter: the loader and the apply nodes.

Load ControlNet Model reads a file or diffusers folder from `controlnet/` (ControlNets,
T2I-Adapters and Control-LoRAs alike, told apart by their keys, as ComfyUI's ControlNetLoader
does). Apply ControlNet attaches one source (model + image + strength + start/end percent) to
every entry of positive and negative, after any sources they already carry, so applying twice
stacks (ComfyUI's `previous_controlnet`). The same source object on both sides lets the denoiser run
the ControlNet once on [uncond, cond], as diffusers' pipelines do. Strength 0 returns the
conditioning unchanged: exactly no ControlNet. The denoiser fits the image to each UNet
call's size (`models/controlnet_source.py`). A Control-LoRA needs no MODEL input: its
ControlNet is built on the model being sampled when sampling starts, as in ComfyUI. Set Union
ControlNet Type returns a copy of a union ControlNet with its control type chosen.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from latentloom.api import (
    UNION_CHOICES,
    UNION_TYPES,
    AdapterSource,
    Conditioning,
    ControlLoraSource,
    ControlModel,
    ControlNetSource,
    Cost,
    CostQuery,
    DynamicChoices,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    Vae,
    enum_input,
    float_input,
    load_control_model,
    socket,
)


def load_controlnet(ctx: NodeContext, control_net_name: str) -> dict[str, object]:
    path = ctx.folders.resolve("controlnet", control_net_name)
    loaded = load_control_model(path, device=ctx.weights_device, dtype=ctx.dtype)
    detection = {
        "kind": loaded.display_kind,
        "family": loaded.family.display_name,
        "layout": loaded.layout,
    }
    return {"control_net": loaded, "report": {"detection": [detection]}}


def _source(
    model: ControlModel, image: torch.Tensor, strength: float, start: float, end: float
) -> ControlNetSource | AdapterSource:
    # A Control-LoRA's source builds its ControlNet on the model being sampled (as ComfyUI's
    # Apply ControlNet does with its control-lora files): no MODEL input is needed here.
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(
            f"Apply ControlNet: image must be an IMAGE [batch, height, width, 3], got shape "
            f"{tuple(image.shape)}"
        )
    if start > end:
        raise ValueError(
            f"Apply ControlNet: start_percent {start} is after end_percent {end}; the "
            "ControlNet would never apply"
        )
    kinds = {"controlnet": ControlNetSource, "control_lora": ControlLoraSource}
    kind = kinds.get(model.kind, AdapterSource)
    return kind(model, image, strength=strength, start_percent=start, end_percent=end)


def _attached(conditioning: Conditioning, source: ControlNetSource | AdapterSource) -> Conditioning:
    return Conditioning(
        tuple(replace(entry, control=(*entry.control, source)) for entry in conditioning.entries)
    )


def apply_controlnet_advanced(
    ctx: NodeContext,
    positive: Conditioning,
    negative: Conditioning,
    control_net: ControlModel,
    image: torch.Tensor,
    strength: float,
    start_percent: float,
    end_percent: float,
    vae: Vae | None = None,
) -> dict[str, object]:
    # The VAE is for ControlNets that read latents (SD3 / FLUX ones); SD 1.x and SDXL
    # ControlNets and T2I-Adapters read pixels, so it is accepted and not needed.
    if strength == 0:
        return {"positive": positive, "negative": negative}
    source = _source(control_net, image, strength, start_percent, end_percent)
    return {"positive": _attached(positive, source), "negative": _attached(negative, source)}


def apply_controlnet(
    ctx: NodeContext,
    conditioning: Conditioning,
    control_net: ControlModel,
    image: torch.Tensor,
    strength: float,
) -> dict[str, object]:
    if strength == 0:
        return {"conditioning": conditioning}
    return {"conditioning": _attached(conditioning, _source(control_net, image, strength, 0, 1))}


def set_union_controlnet_type(
    ctx: NodeContext, control_net: ControlModel, type: str
) -> dict[str, object]:
    if not control_net.is_union:
        raise ValueError(
            f"Set Union ControlNet Type: {control_net.source} is a {control_net.display_kind}, "
            "not a union ControlNet; load a union model (xinsir's controlnet-union-sdxl-1.0 or "
            "its ProMax) or leave this node out"
        )
    number = None if type == "auto" else UNION_TYPES[type]
    return {"control_net": replace(control_net, union_type=number)}


def controlnet_loader_cost(query: CostQuery) -> Cost:
    size = query.files.size("controlnet", str(query.literals.get("control_net_name", ""))) or 0
    return Cost(weights_bytes=query.weights(size))


_COMMON_INPUTS = (
    socket("control_net", SocketType.CONTROL_NET),
    socket("image", SocketType.IMAGE, tooltip="the control image: edges, pose, depth..."),
    float_input("strength", 1.0, min=0.0, max=10.0, step=0.01),
)

NODES = [
    NodeSpec(
        id="loaders.controlnet",
        display_name="Load ControlNet Model",
        aliases=("ControlNetLoader", "Load ControlNet Model", "T2I-Adapter"),
        category="loaders",
        description="Loads a ControlNet or T2I-Adapter (SD 1.x or SDXL) from the controlnet "
        "folder: an original-layout or diffusers .safetensors file, or a diffusers folder. "
        "The kind, family and layout are detected from the weights and reported.",
        inputs=(enum_input("control_net_name", DynamicChoices("controlnet")),),
        outputs=(Output("control_net", SocketType.CONTROL_NET),),
        function=load_controlnet,
        cost=controlnet_loader_cost,
    ),
    NodeSpec(
        id="conditioning.controlnet_apply_advanced",
        display_name="Apply ControlNet",
        aliases=("ControlNetApplyAdvanced", "Apply ControlNet", "Apply ControlNet (Advanced)"),
        category="conditioning/controlnet",
        description="Steers sampling with a ControlNet or T2I-Adapter and a control image: "
        "every entry of positive and negative gets it. Strength scales its residuals (0: no "
        "effect); it applies from start_percent to end_percent of the schedule. Apply again "
        "to stack several. The image is centre-cropped and resized to the latent (or area).",
        inputs=(
            socket("positive", SocketType.CONDITIONING),
            socket("negative", SocketType.CONDITIONING),
            *_COMMON_INPUTS,
            float_input("start_percent", 0.0, min=0.0, max=1.0, step=0.001),
            float_input("end_percent", 1.0, min=0.0, max=1.0, step=0.001),
            socket(
                "vae",
                SocketType.VAE,
                optional=True,
                tooltip="only for ControlNets that read latents; SD 1.x / SDXL ones do not",
            ),
        ),
        outputs=(
            Output("positive", SocketType.CONDITIONING),
            Output("negative", SocketType.CONDITIONING),
        ),
        function=apply_controlnet_advanced,
    ),
    NodeSpec(
        id="conditioning.controlnet_apply",
        display_name="Apply ControlNet (Old)",
        aliases=("ControlNetApply", "Apply ControlNet (OLD)"),
        category="conditioning/controlnet",
        description="Applies a ControlNet or T2I-Adapter to one conditioning for the whole "
        "schedule (ComfyUI's older node; Apply ControlNet also steers the negative side).",
        inputs=(socket("conditioning", SocketType.CONDITIONING), *_COMMON_INPUTS),
        outputs=(Output("conditioning", SocketType.CONDITIONING),),
        function=apply_controlnet,
    ),
    NodeSpec(
        id="conditioning.controlnet_union_type",
        display_name="Set Union ControlNet Type",
        aliases=("SetUnionControlNetType", "Set Union ControlNet Type"),
        category="conditioning/controlnet",
        description="Tells a union ControlNet (xinsir's controlnet-union-sdxl-1.0, ProMax) "
        "what its image is: openpose, depth, hed/pidi/scribble/ted, canny/lineart, normal, "
        "segment, tile or repaint (the last two ProMax only). auto: no type, as ComfyUI does.",
        inputs=(
            socket("control_net", SocketType.CONTROL_NET),
            enum_input("type", UNION_CHOICES, default="auto"),
        ),
        outputs=(Output("control_net", SocketType.CONTROL_NET),),
        function=set_union_controlnet_type,
    ),
]
