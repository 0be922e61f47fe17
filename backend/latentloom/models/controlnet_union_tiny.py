"""Tiny random union ControlNets, written as xinsir's are: a diffusers single file or folder.

It mirrors an SDXL UNet's config as a tiny ControlNet does (`tiny_control.py`); the task
stage is as wide as the hint features (the first level's width, as 320 is in the real
ones), with 8 heads and one layer, and 8 control types (ProMax's; 6 for the first release).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, cast

import torch
from safetensors.torch import save_file
from torch import nn

from latentloom.models.tiny import tiny_unet_config
from latentloom.models.tiny_control import seeded_weights, tiny_controlnet_config


def tiny_union_controlnet(unet_config: dict[str, Any], seed: int = 0, types: int = 8) -> Any:
    """A seeded diffusers ControlNetUnionModel for an SDXL UNet with `unet_config`."""
    from diffusers import ControlNetUnionModel

    config = tiny_controlnet_config(unet_config)
    width = int(config["block_out_channels"][0])
    config |= {
        "num_control_type": types,
        "num_trans_channel": width,
        "num_trans_head": 8,
        "num_trans_layer": 1,
        "num_proj_channel": width,
    }
    return seeded_weights(cast(nn.Module, ControlNetUnionModel(**config)), seed)


def make_tiny_union_controlnet(
    out_path: str | Path, *, layout: Literal["diffusers", "folder"] = "diffusers", seed: int = 0
) -> Path:
    """Write a tiny union ControlNet for the tiny SDXL checkpoint's UNet; returns the path."""
    module = tiny_union_controlnet(tiny_unet_config("sdxl"), seed)
    state = {k: v.to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "folder":
        path.mkdir(exist_ok=True)
        config = {"_class_name": "ControlNetUnionModel", **dict(module.config)}
        (path / "config.json").write_text(json.dumps(config, default=list), encoding="utf-8")
        save_file(state, str(path / "diffusion_pytorch_model.safetensors"))
        return path
    save_file(state, str(path), metadata={"latentloom.tiny": "controlnet_union"})
    return path
