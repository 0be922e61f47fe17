"""Write small, seeded LoRA files for tests and example workflows.

The same random factors are written in any of three layouts, so a test can check that the
loader reads them all alike:

* `kohya`: `lora_unet_<diffusers name>` / `lora_te_` (or `lora_te1_`/`lora_te2_`) with `.alpha`;
* `kohya_sgm`: as kohya-ss writes SDXL LoRAs, UNet layers named after Stability's UNet
  (`lora_unet_input_blocks_4_1_...`);
* `peft`: diffusers' layout, `unet.<name>.lora_A.weight`/`.lora_B.weight`, alpha in the
  `lora_adapter_metadata` header entry instead of `.alpha` tensors.

Adapted layers: every Linear inside the UNet's transformer blocks plus `proj_in`/`proj_out`, the
first ResNet's 3x3 `conv1` (a conv LoRA), and every Linear in the text encoders' layers. Alpha
is `rank / 2`, so the scale `alpha / rank` is 0.5 and a wrong default (1.0) would show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import save_file

from latentloom.models.handles import TextEncoders
from latentloom.models.lora import METADATA_KEY
from latentloom.models.lora_names import sgm_aliases, strip_text_model, weighted_module_names

Layout = Literal["kohya", "kohya_sgm", "peft"]
_FACTOR_STD = 0.05


def make_tiny_lora(
    unet: torch.nn.Module | None,
    text_encoders: TextEncoders | Sequence[torch.nn.Module],
    out_path: str | Path,
    layout: Layout = "kohya",
    rank: int = 4,
    seed: int = 0,
) -> Path:
    """Write a LoRA for `unet` and up to two CLIP text models to `out_path`; returns the path."""
    if isinstance(text_encoders, TextEncoders):
        text_encoders = [encoder.model for encoder in text_encoders.encoders]
    if layout not in ("kohya", "kohya_sgm", "peft"):
        raise ValueError(f"layout {layout!r} is not one of 'kohya', 'kohya_sgm', 'peft'")
    if len(text_encoders) > 2:
        raise ValueError(f"at most two text encoders, got {len(text_encoders)}")
    generator = torch.Generator().manual_seed(seed)
    alpha = rank / 2
    tensors: dict[str, torch.Tensor] = {}
    config: dict[str, object] = {}
    if unet is not None:
        prefix = "unet." if layout == "peft" else "lora_unet_"
        for module_name, written in _unet_names(unet, layout).items():
            key = _key_base(prefix, written, layout)
            _add_factors(tensors, unet, module_name, key, layout, rank, alpha, generator)
        config.update({"unet.r": rank, "unet.lora_alpha": alpha})
    for index, encoder in enumerate(text_encoders):
        prefix = _text_prefix(index, len(text_encoders), layout)
        for module_name in _text_targets(encoder):
            # Files name CLIP layers as transformers 4 did: `text_model.encoder.layers...`.
            key = _key_base(prefix, "text_model." + strip_text_model(module_name), layout)
            _add_factors(tensors, encoder, module_name, key, layout, rank, alpha, generator)
        component = "text_encoder" if index == 0 else "text_encoder_2"
        config.update({f"{component}.r": rank, f"{component}.lora_alpha": alpha})
    metadata = {"format": "pt"}
    if layout == "peft":
        metadata[METADATA_KEY] = json.dumps(config, sort_keys=True)
    path = Path(out_path)
    save_file(tensors, str(path), metadata=metadata)
    return path


def _key_base(prefix: str, dotted_name: str, layout: Layout) -> str:
    return prefix + (dotted_name if layout == "peft" else dotted_name.replace(".", "_"))


def _unet_names(unet: torch.nn.Module, layout: Layout) -> dict[str, str]:
    """`{diffusers module name: dotted name as the layout writes it}`."""
    names = weighted_module_names(unet)
    targets = [name for name in names if _is_unet_target(unet, name)]
    if layout == "kohya_sgm":
        to_sgm = {diffusers: sgm for sgm, diffusers in sgm_aliases(unet, names).items()}
        return {name: to_sgm[name] for name in targets}
    return {name: name for name in targets}


def _is_unet_target(unet: torch.nn.Module, name: str) -> bool:
    module = unet.get_submodule(name)
    if name == "down_blocks.0.resnets.0.conv1":
        return True
    if name.endswith((".proj_in", ".proj_out")):
        return True
    return ".transformer_blocks." in name and isinstance(module, torch.nn.Linear)


def _text_targets(encoder: torch.nn.Module) -> list[str]:
    return [
        name
        for name in weighted_module_names(encoder)
        if ".layers." in name and isinstance(encoder.get_submodule(name), torch.nn.Linear)
    ]


def _text_prefix(index: int, count: int, layout: Layout) -> str:
    if layout == "peft":
        return "text_encoder." if index == 0 else "text_encoder_2."
    if count == 1:
        return "lora_te_"
    return "lora_te1_" if index == 0 else "lora_te2_"


def _add_factors(
    tensors: dict[str, torch.Tensor],
    root: torch.nn.Module,
    module_name: str,
    key_base: str,
    layout: Layout,
    rank: int,
    alpha: float,
    generator: torch.Generator,
) -> None:
    weight = root.get_parameter(f"{module_name}.weight")
    out_features, in_features, *kernel = weight.shape
    layer_rank = min(rank, out_features, in_features)
    down = torch.randn(layer_rank, in_features, *kernel, generator=generator) * _FACTOR_STD
    up = torch.randn(out_features, layer_rank, *[1] * len(kernel), generator=generator)
    up = up * _FACTOR_STD
    if layout == "peft":
        tensors[f"{key_base}.lora_A.weight"] = down
        tensors[f"{key_base}.lora_B.weight"] = up
    else:
        tensors[f"{key_base}.lora_down.weight"] = down
        tensors[f"{key_base}.lora_up.weight"] = up
        tensors[f"{key_base}.alpha"] = torch.tensor(float(alpha))
