"""Tiny random ControlNets and T2I-Adapters, written in the layouts users' files have.

A tiny ControlNet mirrors a tiny checkpoint's UNet (`tiny.tiny_unet_config`): same levels,
widths and attention, a four-width hint encoder (8x downscale, as the real 16-32-96-256 one)
and seeded weights everywhere, zero convs included, so its residuals visibly move the
picture. It is written as the original single file (`control_model.*`, ComfyUI's and
A1111's files), a diffusers single file, or a diffusers folder, so tests exercise every
loader path on the same weights. Weights are rounded to fp16, as stored, before writing.

Tiny T2I-Adapters: SD 1.x `full_adapter` with widths 32, 64 (for a UNet whose first level
has attention, as SD 1.5's), and SDXL `full_adapter_xl` with widths 32, 64, 64, 64, which
fits the tiny SDXL checkpoint's UNet. Written in TencentARC's layout or diffusers'.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, Literal, cast

import torch
from safetensors.torch import save_file
from torch import nn

from latentloom.models.controlnet_keys import (
    ORIGINAL_PREFIX,
    adapter_to_original,
    controlnet_keymap,
    controlnet_to_original,
)
from latentloom.models.family import FamilyName
from latentloom.models.tiny import tiny_unet_config

ControlLayout = Literal["original", "diffusers", "folder"]
AdapterLayout = Literal["original", "diffusers"]
TINY_HINT_WIDTHS = (16, 16, 32, 32)


def tiny_controlnet_config(unet_config: dict[str, Any]) -> dict[str, Any]:
    """ControlNetModel kwargs for a ControlNet of a UNet with `unet_config`."""
    from latentloom.models.controlnet_keys import CONTROLNET_CONFIG_KEYS

    config = {key: unet_config[key] for key in CONTROLNET_CONFIG_KEYS if key in unet_config}
    config["conditioning_embedding_out_channels"] = TINY_HINT_WIDTHS
    return config


def seeded_weights(module: nn.Module, seed: int) -> nn.Module:
    """Per-tensor seeded values (crc of the name), so no tensor depends on the others' order."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            generator = torch.Generator().manual_seed(seed * 2**32 + zlib.crc32(name.encode()))
            if tensor.ndim == 1:
                value = torch.ones_like(tensor) if "norm" in name else torch.zeros_like(tensor)
            else:
                fan_in = tensor.shape[1:].numel()
                value = torch.randn(tensor.shape, generator=generator) / fan_in**0.5
            tensor.copy_(value.to(torch.float16).to(tensor.dtype))
    return module.eval().requires_grad_(False)


def tiny_controlnet(unet_config: dict[str, Any], seed: int = 0) -> Any:
    """A seeded diffusers ControlNetModel for a UNet with `unet_config`."""
    from diffusers import ControlNetModel

    return seeded_weights(
        cast(nn.Module, ControlNetModel(**tiny_controlnet_config(unet_config))), seed
    )


def make_tiny_controlnet(
    family: FamilyName, out_path: str | Path, *, layout: ControlLayout = "original", seed: int = 0
) -> Path:
    """Write a tiny ControlNet for the tiny `family` checkpoint's UNet; returns the path."""
    unet_config = tiny_unet_config(family)
    module = tiny_controlnet(unet_config, seed)
    state = {k: v.to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "folder":
        path.mkdir(exist_ok=True)
        config = {"_class_name": "ControlNetModel", **dict(module.config)}
        (path / "config.json").write_text(json.dumps(config, default=list), encoding="utf-8")
        save_file(state, str(path / "diffusion_pytorch_model.safetensors"))
        return path
    if layout == "original":
        keymap = controlnet_keymap(
            _family(family),
            unet_config["layers_per_block"],
            len(unet_config["block_out_channels"]),
        )
        widths = len(TINY_HINT_WIDTHS)
        state = {
            ORIGINAL_PREFIX + controlnet_to_original(k, keymap, widths): v for k, v in state.items()
        }
    save_file(
        state, str(path), metadata={"latentloom.tiny": "controlnet", "latentloom.family": family}
    )
    return path


def _family(name: FamilyName) -> Any:
    from latentloom.models.family import FAMILIES

    return FAMILIES[name]


def tiny_adapter_config(family: FamilyName) -> dict[str, Any]:
    if family == "sdxl":
        return {
            "in_channels": 3,
            "channels": [32, 64, 64, 64],
            "num_res_blocks": 2,
            "downscale_factor": 16,
            "adapter_type": "full_adapter_xl",
        }
    return {
        "in_channels": 3,
        "channels": [32, 64],
        "num_res_blocks": 2,
        "downscale_factor": 8,
        "adapter_type": "full_adapter",
    }


def tiny_adapter(family: FamilyName, seed: int = 0) -> Any:
    from diffusers import T2IAdapter

    return seeded_weights(cast(nn.Module, T2IAdapter(**tiny_adapter_config(family))), seed)


def make_tiny_t2i_adapter(
    family: FamilyName, out_path: str | Path, *, layout: AdapterLayout = "original", seed: int = 0
) -> Path:
    """Write a tiny T2I-Adapter (see the module docstring for which UNets it fits)."""
    module = tiny_adapter(family, seed)
    state = {k: v.to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    if layout == "original":
        per_level = tiny_adapter_config(family)["num_res_blocks"]
        state = {adapter_to_original(k, per_level): v for k, v in state.items()}
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        state, str(path), metadata={"latentloom.tiny": "t2i_adapter", "latentloom.family": family}
    )
    return path
