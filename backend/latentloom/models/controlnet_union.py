"""Union ControlNets (xinsir's controlnet-union-sdxl-1.0 and its ProMax): one net, many kinds.

A union ControlNet is an SDXL ControlNet plus a "task" stage: the hint's mean feature plus a
learned embedding of the control type (`task_embedding`) goes through a small transformer
(`transformer_layes`, the files' spelling) whose output (`spatial_ch_projs`) shifts the hint
features, and a one-hot of the type is embedded into the time embedding
(`control_add_embedding`). The files are distributed in diffusers' layout only (single file
or folder), loaded into diffusers' `ControlNetUnionModel`; the union keys are read off the
shapes here. Control types are numbered as ComfyUI's SetUnionControlNetType and diffusers
number them (`UNION_TYPES`).

A known type runs diffusers' forward (xinsir's reference, which also attends to the
latent's mean feature). "auto" is ComfyUI's: no type, so the time embedding gets the
embedding of an all-zero type vector and the hint features are added without the task
stage; diffusers has no such call, so it is written out here in diffusers' order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

# ComfyUI's names (its widget values) and numbers, which are also diffusers' / xinsir's.
UNION_TYPES: dict[str, int] = {
    "openpose": 0,
    "depth": 1,
    "hed/pidi/scribble/ted": 2,
    "canny/lineart/anime_lineart/mlsd": 3,
    "normal": 4,
    "segment": 5,
    "tile": 6,
    "repaint": 7,
}
UNION_CHOICES = ("auto", *UNION_TYPES)
UNION_PREFIXES = (
    "task_embedding",
    "transformer_layes.",
    "spatial_ch_projs.",
    "control_add_embedding.",
)


def is_union(keys: Mapping[str, Any] | set[str] | list[str]) -> bool:
    return "task_embedding" in keys and "control_add_embedding.linear_1.weight" in keys


def union_config(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """ControlNetUnionModel's union keyword arguments, from the union keys' shapes."""
    types, trans_channels = shapes["task_embedding"]
    layers = {int(m.group(1)) for k in shapes if (m := re.match(r"transformer_layes\.(\d+)\.", k))}
    return {
        "num_control_type": types,
        "num_trans_channel": trans_channels,
        # Heads are not in the shapes: every released union model has 8 (ComfyUI assumes 8).
        "num_trans_head": 8,
        "num_trans_layer": len(layers),
        "num_proj_channel": shapes["spatial_ch_projs.weight"][0],
        "addition_time_embed_dim": shapes["control_add_embedding.linear_1.weight"][1] // types,
    }


def union_residuals(
    module: Any,
    sample: Tensor,
    timestep: Tensor,
    context: Tensor,
    hint: Tensor,
    added_cond: dict[str, Tensor] | None,
    control_type: int | None,
) -> tuple[tuple[Tensor, ...], Tensor]:
    """(down residuals, mid residual) of a union ControlNet for one type, or "auto" (None)."""
    types = int(module.config.num_control_type)
    if control_type is not None and not 0 <= control_type < types:
        names = [name for name, number in UNION_TYPES.items() if number < types]
        raise ValueError(
            f"union ControlNet with {types} control types has no type {control_type}; "
            f"it knows auto, {', '.join(names)} (the ProMax model adds tile and repaint)"
        )
    if control_type is not None:
        one_hot = torch.zeros(sample.shape[0], types, device=sample.device, dtype=sample.dtype)
        one_hot[:, control_type] = 1
        down, mid = module(
            sample,
            timestep,
            encoder_hidden_states=context,
            controlnet_cond=[hint],
            control_type=one_hot,
            control_type_idx=[control_type],
            added_cond_kwargs=added_cond,
            return_dict=False,
        )
        return tuple(down), mid
    return _auto(module, sample, timestep, context, hint, added_cond or {})


@torch.no_grad()
def _auto(
    module: Any,
    sample: Tensor,
    timestep: Tensor,
    context: Tensor,
    hint: Tensor,
    added: dict[str, Tensor],
) -> tuple[tuple[Tensor, ...], Tensor]:
    batch = sample.shape[0]
    steps = (timestep[None] if timestep.ndim == 0 else timestep).to(sample.device).expand(batch)
    emb = module.time_embedding(module.time_proj(steps).to(sample.dtype))
    text, time_ids = added["text_embeds"], added["time_ids"]
    time_embeds = module.add_time_proj(time_ids.flatten()).reshape(text.shape[0], -1)
    aug = module.add_embedding(torch.concat([text, time_embeds], dim=-1).to(emb.dtype))
    no_type = torch.zeros(batch * int(module.config.num_control_type), device=sample.device)
    control = module.control_type_proj(no_type).reshape(batch, -1).to(emb.dtype)
    emb = emb + module.control_add_embedding(control)
    emb = emb + aug
    h = module.conv_in(sample)
    h = h + module.controlnet_cond_embedding(hint)
    residuals: tuple[Tensor, ...] = (h,)
    for block in module.down_blocks:
        if getattr(block, "has_cross_attention", False):
            h, more = block(hidden_states=h, temb=emb, encoder_hidden_states=context)
        else:
            h, more = block(hidden_states=h, temb=emb)
        residuals += more
    h = module.mid_block(h, emb, encoder_hidden_states=context)
    down = tuple(zero(r) for zero, r in zip(module.controlnet_down_blocks, residuals, strict=True))
    return down, module.controlnet_mid_block(h)
