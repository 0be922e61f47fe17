"""Tiny Control-LoRAs in Stability's key layout, derived from a tiny ControlNet and its UNet.

Every ControlNet weight of two or more dimensions that the UNet also has is stored as
`<original name>.up` / `.down`: the full-rank SVD of (ControlNet weight - UNet weight), so
`up @ down` gives the difference back to float32 round-off and the Control-LoRA on that
UNet equals the ControlNet (the oracle). Convolutions keep the real files' shapes: `down`
[rank, in, k, k], `up` [out, rank, 1, 1]. Biases, norms and what the UNet lacks (hint encoder,
zero convs, middle_block_out) are stored whole, plus the `lora_controlnet` marker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from latentloom.models.control_lora import CONTROL_LORA_MARKER
from latentloom.models.controlnet_keys import controlnet_keymap, controlnet_to_original
from latentloom.models.family import Family


def control_lora_tensors(controlnet: Any, unet: Any, family: Family) -> dict[str, Tensor]:
    """The Control-LoRA (original names) that turns `unet` into `controlnet`."""
    config = controlnet.config
    keymap = controlnet_keymap(family, config.layers_per_block, len(config.block_out_channels))
    widths = len(config.conditioning_embedding_out_channels)
    base = unet.state_dict()
    out: dict[str, Tensor] = {CONTROL_LORA_MARKER: torch.zeros(1)}
    for name, weight in controlnet.state_dict().items():
        original = controlnet_to_original(name, keymap, widths)
        if name in base and weight.ndim >= 2:
            up, down = _factors(weight.double() - base[name].double())
            stem = original.removesuffix(".weight")
            out[f"{stem}.up"], out[f"{stem}.down"] = up, down
        else:
            out[original] = weight.detach().to(torch.float32).clone()
    return out


def _factors(delta: Tensor) -> tuple[Tensor, Tensor]:
    """(up, down) with up @ down = delta, full rank, in the shapes control-lora files use."""
    matrix = delta.reshape(delta.shape[0], -1)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    up = (u * s).to(torch.float32)
    down = vh.to(torch.float32).reshape(-1, *delta.shape[1:])
    if delta.ndim == 4:
        up = up.reshape(*up.shape, 1, 1)
    return up.contiguous(), down.contiguous()


def write_control_lora(controlnet: Any, unet: Any, family: Family, out_path: str | Path) -> Path:
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(control_lora_tensors(controlnet, unet, family), str(path))
    return path
