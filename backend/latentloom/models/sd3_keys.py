"""Tensor names of an SD 3.x MMDiT: original single-file layout <-> diffusers' SD3Transformer2DModel.

Per key, like `keymap.py`, so the loader streams one tensor at a time (diffusers' own
`convert_sd3_transformer_checkpoint_to_diffusers` converts a whole state dict in memory, which
would double the peak for an 8-billion-parameter model). Three kinds of tensor change shape:
- `qkv` projections pack q, k, v on the first axis: `split_qkv` into to_q / to_k / to_v (the
  image stream) or add_q_proj / add_k_proj / add_v_proj (the text stream);
- the final layer's adaLN modulation, and that of the last block's text stream (which only
  feeds attention, "pre-only"), are stored (shift, scale) and diffusers reads (scale, shift):
  `swap_halves`.
Everything else is a rename. `Sd3KeyMap.to_original` is the inverse, written from the same
tables; the tiny writer uses it, and the tests compare both with diffusers' converter.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from latentloom.models.family import SDXL
from latentloom.models.keymap import KeyMap, Source, Target
from latentloom.models.layout import UNET_PREFIX

SD3_MARKER = UNET_PREFIX + "joint_blocks.0.x_block.attn.qkv.weight"


def is_sd3(keys: Collection[str]) -> bool:
    """An MMDiT under the UNet prefix: SD 3 / 3.5 (FLUX's double_blocks are another layout)."""
    return SD3_MARKER in keys


def sd3_transformer_prefix(keys: Collection[str]) -> str | None:
    """Where an SD 3.x transformer file's names start (Load Diffusion Model): the checkpoint
    prefix, none (bare MMDiT names), or None when the file holds no MMDiT."""
    for prefix in (UNET_PREFIX, ""):
        if prefix + SD3_MARKER.removeprefix(UNET_PREFIX) in keys:
            return prefix
    return None


_FIXED = {
    "x_embedder.proj": "pos_embed.proj",
    "t_embedder.mlp.0": "time_text_embed.timestep_embedder.linear_1",
    "t_embedder.mlp.2": "time_text_embed.timestep_embedder.linear_2",
    "y_embedder.mlp.0": "time_text_embed.text_embedder.linear_1",
    "y_embedder.mlp.2": "time_text_embed.text_embedder.linear_2",
    "context_embedder": "context_embedder",
    "final_layer.linear": "proj_out",
    "final_layer.adaLN_modulation.1": "norm_out.linear",
}
# Per joint block: (stream, original module) -> diffusers module; qkv entries name three.
_X_STREAM = {
    "attn.ln_q": "attn.norm_q",
    "attn.ln_k": "attn.norm_k",
    "attn.proj": "attn.to_out.0",
    "attn2.ln_q": "attn2.norm_q",
    "attn2.ln_k": "attn2.norm_k",
    "attn2.proj": "attn2.to_out.0",
    "adaLN_modulation.1": "norm1.linear",
    "mlp.fc1": "ff.net.0.proj",
    "mlp.fc2": "ff.net.2",
}
_CONTEXT_STREAM = {
    "attn.ln_q": "attn.norm_added_q",
    "attn.ln_k": "attn.norm_added_k",
    "attn.proj": "attn.to_add_out",
    "adaLN_modulation.1": "norm1_context.linear",
    "mlp.fc1": "ff_context.net.0.proj",
    "mlp.fc2": "ff_context.net.2",
}
_QKV = {
    ("x_block", "attn.qkv"): ("attn.to_q", "attn.to_k", "attn.to_v"),
    ("x_block", "attn2.qkv"): ("attn2.to_q", "attn2.to_k", "attn2.to_v"),
    ("context_block", "attn.qkv"): ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
}
_STREAMS = {"x_block": _X_STREAM, "context_block": _CONTEXT_STREAM}


def _back(table: dict[str, str]) -> dict[str, str]:
    return {value: key for key, value in table.items()}


_FIXED_BACK = _back(_FIXED)
_STREAMS_BACK = {
    diffusers: (stream, original)
    for stream, table in _STREAMS.items()
    for original, diffusers in table.items()
}
_QKV_BACK = {
    name: (stream, module, part)
    for (stream, module), names in _QKV.items()
    for part, name in enumerate(names)
}


class Sd3KeyMap:
    """The MMDiT name mapping for a model of `num_layers` joint blocks (the last is pre-only)."""

    def __init__(self, num_layers: int) -> None:
        self.last = num_layers - 1

    def to_diffusers(self, rest: str) -> Target:
        """The target of `model.diffusion_model.<rest>`; transform "unknown" when unplaceable."""
        if rest == "pos_embed":
            return Target("unet", ("pos_embed.pos_embed",), "copy")
        module, _, param = rest.rpartition(".")
        if module in _FIXED:
            swap = module == "final_layer.adaLN_modulation.1"
            return Target("unet", (f"{_FIXED[module]}.{param}",), "swap_halves" if swap else "copy")
        parts = module.split(".", 3)  # joint_blocks.N.stream.module
        if len(parts) < 4 or parts[0] != "joint_blocks" or not parts[1].isdigit():
            return Target("unet", (), "unknown")
        block, stream, inner = int(parts[1]), parts[2], parts[3]
        prefix = f"transformer_blocks.{block}."
        if (stream, inner) in _QKV:
            names = _QKV[stream, inner]
            return Target("unet", tuple(f"{prefix}{name}.{param}" for name in names), "split_qkv")
        renamed = _STREAMS.get(stream, {}).get(inner)
        if renamed is None:
            return Target("unet", (), "unknown")
        pre_only = stream == "context_block" and block == self.last
        swap = pre_only and inner == "adaLN_modulation.1"
        return Target("unet", (f"{prefix}{renamed}.{param}",), "swap_halves" if swap else "copy")

    def to_original(self, key: str) -> Source:
        """The original tensor (full key) a diffusers transformer tensor comes from."""
        if key == "pos_embed.pos_embed":
            return Source(UNET_PREFIX + "pos_embed", "copy")
        module, _, param = key.rpartition(".")
        if module in _FIXED_BACK:
            swap = module == "norm_out.linear"
            name = f"{UNET_PREFIX}{_FIXED_BACK[module]}.{param}"
            return Source(name, "swap_halves" if swap else "copy")
        parts = module.split(".", 2)  # transformer_blocks.N.module
        if len(parts) < 3 or parts[0] != "transformer_blocks":
            raise ValueError(f"no original name for SD 3 transformer tensor '{key}'")
        block, inner = int(parts[1]), parts[2]
        prefix = f"{UNET_PREFIX}joint_blocks.{block}."
        if inner in _QKV_BACK:
            stream, original, part = _QKV_BACK[inner]
            return Source(f"{prefix}{stream}.{original}.{param}", "split_qkv", part)
        if inner not in _STREAMS_BACK:
            raise ValueError(f"no original name for SD 3 transformer tensor '{key}'")
        stream, original = _STREAMS_BACK[inner]
        pre_only = stream == "context_block" and block == self.last
        swap = pre_only and original == "adaLN_modulation.1"
        return Source(f"{prefix}{stream}.{original}.{param}", "swap_halves" if swap else "copy")


def vae_names(config: Mapping[str, Any]) -> KeyMap:
    """The checkpoint key map's VAE half: VAE names are the same in every family (the family given
    here only picks text towers, which this map is never asked about)."""
    return KeyMap(SDXL, {"layers_per_block": 1, "up_block_types": []}, config, {})
