"""Tiny random-weight IP-Adapter files in the real layout, for tests and the demo.

The names and shapes are those of h94's releases (`image_proj.*`, `ip_adapter.{1,3,...}.to_k_ip`
and `to_v_ip`), sized for a given UNet and the tiny CLIP vision tower (`clip_vision_tiny.py`):
"base" projects its 16-wide image embedding to 4 tokens, "plus" resamples its 32-wide hidden
states to 4 tokens through a four-layer perceiver (one 64-wide head). Weights are seeded normal
values scaled by 1/sqrt(fan-in), norms near 1, rounded to fp16; the same seed gives the same
bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from latentloom.models.attention_patching import cross_attention_names
from latentloom.models.clip_vision_tiny import TINY_VISION_PROJECTION, TINY_VISION_WIDTH
from latentloom.models.safetensors_write import save_tensors

STORAGE = torch.float16
TINY_TOKENS = 4
TINY_RESAMPLER_WIDTH = 64
TINY_RESAMPLER_DEPTH = 4  # every released Plus resampler has 4 layers (diffusers assumes it)


class _Random:
    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def linear(self, rows: int, columns: int) -> Tensor:
        return torch.randn(rows, columns, generator=self.generator) / columns**0.5

    def bias(self, size: int) -> Tensor:
        return 0.02 * torch.randn(size, generator=self.generator)

    def norm(self, prefix: str, size: int) -> dict[str, Tensor]:
        weight = 1.0 + 0.1 * torch.randn(size, generator=self.generator)
        return {prefix + "weight": weight, prefix + "bias": self.bias(size)}


def _base_projection(random: _Random, cross: int) -> dict[str, Tensor]:
    return {
        "proj.weight": random.linear(TINY_TOKENS * cross, TINY_VISION_PROJECTION),
        "proj.bias": random.bias(TINY_TOKENS * cross),
        **random.norm("norm.", cross),
    }


def _plus_projection(random: _Random, cross: int) -> dict[str, Tensor]:
    width, hidden = TINY_VISION_WIDTH, TINY_RESAMPLER_WIDTH
    state = {
        "latents": torch.randn(1, TINY_TOKENS, hidden, generator=random.generator) / hidden**0.5,
        "proj_in.weight": random.linear(hidden, width),
        "proj_in.bias": random.bias(hidden),
        "proj_out.weight": random.linear(cross, hidden),
        "proj_out.bias": random.bias(cross),
        **random.norm("norm_out.", cross),
    }
    for i in range(TINY_RESAMPLER_DEPTH):
        state |= random.norm(f"layers.{i}.0.norm1.", hidden)
        state |= random.norm(f"layers.{i}.0.norm2.", hidden)
        state[f"layers.{i}.0.to_q.weight"] = random.linear(hidden, hidden)
        state[f"layers.{i}.0.to_kv.weight"] = random.linear(2 * hidden, hidden)
        state[f"layers.{i}.0.to_out.weight"] = random.linear(hidden, hidden)
        state |= random.norm(f"layers.{i}.1.0.", hidden)
        state[f"layers.{i}.1.1.weight"] = random.linear(4 * hidden, hidden)
        state[f"layers.{i}.1.3.weight"] = random.linear(hidden, 4 * hidden)
    return state


def tiny_ip_adapter_state(
    unet: Any, kind: Literal["base", "plus"] = "base", seed: int = 0
) -> dict[str, Tensor]:
    """An IP-Adapter state dict (original names) for the diffusers UNet `unet`."""
    random = _Random(seed)
    cross = int(unet.config.cross_attention_dim)
    make = _base_projection if kind == "base" else _plus_projection
    state = {"image_proj." + key: value for key, value in make(random, cross).items()}
    modules = dict(cast(nn.Module, unet).named_modules())
    for index, name in enumerate(cross_attention_names(cast(nn.Module, unet))):
        width = modules[name.removesuffix(".processor")].to_q.out_features
        for letter in "kv":
            state[f"ip_adapter.{2 * index + 1}.to_{letter}_ip.weight"] = random.linear(width, cross)
    return {key: value.to(STORAGE).contiguous() for key, value in state.items()}


def make_tiny_ip_adapter(
    path: Path, unet: Any, kind: Literal["base", "plus"] = "base", seed: int = 0
) -> Path:
    """Write a tiny IP-Adapter for `unet` to `path` (an `ipadapter/` safetensors file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, tiny_ip_adapter_state(unet, kind, seed))
    return path


EXAMPLE_CLIP_VISION = "tiny-clip-vision.safetensors"
EXAMPLE_IP_ADAPTER = "tiny-ip-adapter-sd15.safetensors"
EXAMPLE_IP_ADAPTER_PLUS = "tiny-ip-adapter-plus-sd15.safetensors"


def make_example_ip_adapters(root: Path) -> None:
    """The files the IP-Adapter example names, for the tiny SD 1.5 checkpoint (seed 0), under a
    model folder in the ComfyUI layout (`clip_vision/`, `ipadapter/`)."""
    from latentloom.models.clip_vision_tiny import make_tiny_clip_vision
    from latentloom.models.tiny import tiny_modules

    unet = tiny_modules("sd15", seed=0).unet
    make_tiny_clip_vision(root / "clip_vision" / EXAMPLE_CLIP_VISION)
    make_tiny_ip_adapter(root / "ipadapter" / EXAMPLE_IP_ADAPTER, unet, "base")
    make_tiny_ip_adapter(root / "ipadapter" / EXAMPLE_IP_ADAPTER_PLUS, unet, "plus", seed=1)
