"""ControlNet and T2I-Adapter files: which layout a file uses, key names, configs from shapes.

A ControlNet is a copy of the UNet's encoder half plus a small image encoder and one zero
conv per skip connection. In the original (`cldm`) layout its encoder keys are exactly the
UNet's (`input_blocks...`, `middle_block...`, `time_embed...`), so they are renamed by the
UNet's own `KeyMap`; the rest is a short table:
    input_hint_block.0 -> controlnet_cond_embedding.conv_in
    input_hint_block.2k+2 -> controlnet_cond_embedding.blocks.k   (k < 2 (levels-1))
    input_hint_block.<last> -> controlnet_cond_embedding.conv_out
    zero_convs.i.0 -> controlnet_down_blocks.i,  middle_block_out.0 -> controlnet_mid_block
Files carry the keys bare or under `control_model.`. The config is the UNet's, read from the
same shapes by `configs.unet_config`; diffusers single files are renamed back to the original
layout first so one reader serves both.

A T2I-Adapter (TencentARC's `Adapter`) is `conv_in` then `body.N` residual blocks, N = level x
blocks per level + block; diffusers groups them as `adapter.body.level.resnets.block` (with a
level's `in_conv` on the level). Which family: the pixel-unshuffle factor seen in `conv_in`'s
input channels (8 x 8 x 3 for SD 1.x, 16 x 16 x 3 for SDXL), as ComfyUI decides it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from latentloom.models.detect import Detection
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES, Family
from latentloom.models.keymap import KeyMap
from latentloom.models.layout import UNET_PREFIX

Layout = Literal["controlnet_original", "controlnet_diffusers", "t2i_original", "t2i_diffusers"]
Shapes = Mapping[str, tuple[int, ...]]

ORIGINAL_PREFIX = "control_model."
_HINT = "input_hint_block."
ORIGINAL_ADAPTER_BLOCKS = 2
_EMBED = "controlnet_cond_embedding."
# ControlNetModel's keyword arguments that a UNet config also has.
CONTROLNET_CONFIG_KEYS = (
    "in_channels",
    "down_block_types",
    "block_out_channels",
    "layers_per_block",
    "cross_attention_dim",
    "attention_head_dim",
    "use_linear_projection",
    "transformer_layers_per_block",
    "norm_num_groups",
    "upcast_attention",
    "addition_embed_type",
    "addition_time_embed_dim",
    "projection_class_embeddings_input_dim",
)


@dataclass(frozen=True)
class FileLayout:
    layout: Layout
    prefix: str  # stripped from every key before mapping

    @property
    def describe(self) -> str:
        return {
            "controlnet_original": "ControlNet, original (cldm) layout",
            "controlnet_diffusers": "ControlNet, diffusers layout",
            "t2i_original": "T2I-Adapter, original layout",
            "t2i_diffusers": "T2I-Adapter, diffusers layout",
        }[self.layout]


def detect_layout(keys: Collection[str], path: str | Path) -> FileLayout:
    """Which of the four layouts the file's keys follow (ComfyUI's tell-tale keys)."""
    if f"{ORIGINAL_PREFIX}zero_convs.0.0.weight" in keys:
        return FileLayout("controlnet_original", ORIGINAL_PREFIX)
    if "zero_convs.0.0.weight" in keys:
        return FileLayout("controlnet_original", "")
    if f"{_EMBED}conv_in.weight" in keys:
        return FileLayout("controlnet_diffusers", "")
    if "adapter.body.0.resnets.0.block1.weight" in keys:
        return FileLayout("t2i_diffusers", "adapter.")
    if "body.0.block1.weight" in keys and "conv_in.weight" in keys:
        return FileLayout("t2i_original", "")
    sample = ", ".join(sorted(keys)[:5]) or "no tensors"
    raise UnrecognizedCheckpointError(
        path,
        "not a ControlNet or T2I-Adapter: expected 'control_model.zero_convs.0.0.weight', "
        "'zero_convs.0.0.weight', 'controlnet_cond_embedding.conv_in.weight', "
        f"'adapter.body.0.resnets.0.block1.weight' or 'body.0.block1.weight'; found {sample}",
        "Put ControlNet and T2I-Adapter safetensors files in models/controlnet",
    )


# --- ControlNet -----------------------------------------------------------------------------


def _levels(shapes: Collection[str], prefix: str) -> int:
    return len({int(m.group(1)) for k in shapes if (m := re.match(prefix + r"(\d+)\.", k))})


def controlnet_keymap(family: Family, layers_per_block: int, levels: int) -> KeyMap:
    """The UNet key map for a ControlNet's encoder half (it has no up blocks or VAE)."""
    config = {"layers_per_block": layers_per_block, "up_block_types": ["UpBlock2D"] * levels}
    return KeyMap(family, config, {"block_out_channels": [0]}, {})


def hint_levels(keys: Collection[str]) -> int:
    """How many widths the hint encoder has: its convs are 0, 2, ..., 4 (levels - 1) + 2."""
    convs = sorted(
        int(k.split(".")[1]) for k in keys if k.startswith(_HINT) and k.endswith("weight")
    )
    return (convs[-1] - 2) // 4 + 1 if convs else 0


def controlnet_to_diffusers(key: str, keymap: KeyMap, hint_widths: int) -> str | None:
    """The diffusers name of an original ControlNet key (prefix already stripped)."""
    head, _, rest = key.partition(".")
    if head == "zero_convs":
        index, _, param = rest.partition(".0.")
        return f"controlnet_down_blocks.{index}.{param}"
    if head == "middle_block_out":
        return f"controlnet_mid_block.{rest.removeprefix('0.')}"
    if head == "input_hint_block":
        index, _, param = rest.partition(".")
        number, last = int(index), 4 * (hint_widths - 1) + 2
        name = (
            "conv_in"
            if number == 0
            else "conv_out"
            if number == last
            else f"blocks.{number // 2 - 1}"
        )
        return f"{_EMBED}{name}.{param}"
    target = keymap.to_diffusers(UNET_PREFIX + key)
    return target.keys[0] if target is not None and target.keys else None


def controlnet_to_original(key: str, keymap: KeyMap, hint_widths: int) -> str:
    """The original name of a diffusers ControlNet key (the inverse, for writers and shapes)."""
    if key.startswith("controlnet_down_blocks."):
        _, index, param = key.split(".")
        return f"zero_convs.{index}.0.{param}"
    if key.startswith("controlnet_mid_block."):
        return f"middle_block_out.0.{key.split('.')[-1]}"
    if key.startswith(_EMBED):
        module, param = key[len(_EMBED) :].rsplit(".", 1)
        if module == "conv_in":
            number = 0
        elif module == "conv_out":
            number = 4 * (hint_widths - 1) + 2
        else:
            number = 2 * int(module.split(".")[1]) + 2
        return f"{_HINT}{number}.{param}"
    return keymap.to_original("unet", key).key.removeprefix(UNET_PREFIX)


def _family(shapes: Shapes) -> Family:
    if "label_emb.0.0.weight" in shapes:
        return FAMILIES["sdxl"]
    context = [s[1] for k, s in shapes.items() if k.endswith("attn2.to_k.weight")]
    return FAMILIES["sd2" if context and context[0] == 1024 else "sd15"]


def controlnet_config(original: Shapes, path: str | Path) -> tuple[Family, dict[str, Any]]:
    """(family, ControlNetModel kwargs) from original-layout shapes."""
    from latentloom.models.configs import unet_config

    family = _family(original)
    shapes = {UNET_PREFIX + k: v for k, v in original.items()}
    # unet_config reads the output conv for out_channels; a ControlNet has none.
    shapes[UNET_PREFIX + "out.2.weight"] = (family.latent_channels,)
    detection = Detection(family, "epsilon", "not used by a ControlNet")
    pooled = None
    if family.name == "sdxl":
        adm = original["label_emb.0.0.weight"][1]
        pooled = adm - 6 * _time_dim(original, adm)
    unet = unet_config(shapes, detection, pooled, path)
    config = {k: unet[k] for k in CONTROLNET_CONFIG_KEYS if k in unet}
    widths = hint_levels(original)
    hint = [original[f"{_HINT}0.weight"][0]] + [
        original[f"{_HINT}{4 * level}.weight"][0] for level in range(1, widths)
    ]
    config["conditioning_channels"] = original[f"{_HINT}0.weight"][1]
    config["conditioning_embedding_out_channels"] = hint
    return family, config


def _time_dim(original: Shapes, adm: int) -> int:
    """SDXL's Fourier width per size number; real files use 256 with a 1280 pooled width."""
    for pooled in (1280, 32, 64, 16):
        width, remainder = divmod(adm - pooled, 6)
        if not remainder and width > 0 and width % 2 == 0:
            return width
    raise UnrecognizedCheckpointError("", f"label_emb takes {adm} inputs, not pooled + 6 x time")


def controlnet_shapes_from_diffusers(
    diffusers: Shapes,
) -> tuple[dict[str, tuple[int, ...]], KeyMap]:
    """Original-layout shapes of a diffusers ControlNet file, and the key map used."""
    levels = _levels(diffusers, r"down_blocks\.")
    per_level = _levels(diffusers, r"down_blocks\.0\.resnets\.")
    family = FAMILIES["sdxl" if "add_embedding.linear_1.weight" in diffusers else "sd15"]
    keymap = controlnet_keymap(family, per_level, levels)
    widths = _levels(diffusers, r"controlnet_cond_embedding\.blocks\.") // 2 + 1
    original = {controlnet_to_original(k, keymap, widths): v for k, v in diffusers.items()}
    return original, keymap


# --- T2I-Adapter ----------------------------------------------------------------------------


def adapter_config(
    original: Shapes, path: str | Path, per_level: int = 2
) -> tuple[Family, dict[str, Any]]:
    """(family, T2IAdapter kwargs) from original-layout shapes.

    The original layout does not show where levels end when a level keeps its width (it has
    no in_conv): every released adapter has two blocks per level, as ComfyUI assumes too.
    """
    blocks = _levels(original, r"body\.")
    levels, remainder = divmod(blocks, per_level)
    kernel = original["body.0.block2.weight"][-1]
    if remainder or not levels or kernel != 1:
        raise UnrecognizedCheckpointError(
            path,
            f"T2I-Adapter with {blocks} blocks over {levels} levels and {kernel}x{kernel} second "
            "convs; supported: full adapters with 1x1 second convs (TencentARC's and diffusers')",
        )
    channels = [original[f"body.{level * per_level}.block1.weight"][0] for level in range(levels)]
    pixels = original["conv_in.weight"][1]
    for factor, family, kind in ((8, "sd15", "full_adapter"), (16, "sdxl", "full_adapter_xl")):
        colours, rest = divmod(pixels, factor * factor)
        if not rest and colours in (1, 3):
            if kind == "full_adapter_xl" and len(channels) != 4:
                break
            config = {
                "in_channels": colours,
                "channels": channels,
                "num_res_blocks": per_level,
                "downscale_factor": factor,
                "adapter_type": kind,
            }
            return FAMILIES[family], config
    raise UnrecognizedCheckpointError(
        path,
        f"T2I-Adapter conv_in takes {pixels} channels: not 1 or 3 colours unshuffled 8x or 16x",
    )


def adapter_to_diffusers(key: str, per_level: int) -> str:
    """`body.N.x` -> `adapter.body.level.resnets.block.x` (a level's in_conv on the level)."""
    if not key.startswith("body."):
        return f"adapter.{key}"
    _, number, rest = key.split(".", 2)
    level, block = divmod(int(number), per_level)
    if rest.startswith("in_conv."):
        return f"adapter.body.{level}.{rest}"
    return f"adapter.body.{level}.resnets.{block}.{rest}"


def adapter_to_original(key: str, per_level: int) -> str:
    key = key.removeprefix("adapter.")
    parts = key.split(".")
    if parts[0] != "body":
        return key
    level = int(parts[1])
    if parts[2] == "in_conv":
        return f"body.{level * per_level}.{'.'.join(parts[2:])}"
    return f"body.{level * per_level + int(parts[3])}.{'.'.join(parts[4:])}"


def adapter_blocks_per_level(keys: Collection[str], layout: Layout) -> int:
    if layout == "t2i_diffusers":
        return _levels(keys, r"body\.0\.resnets\.")  # keys without "adapter."
    return ORIGINAL_ADAPTER_BLOCKS
