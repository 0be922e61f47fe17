"""SD 3.x structure from tensor shapes: the MMDiT's config, the 16-channel VAE's, the CLIP towers'.

Everything the diffusers `SD3Transformer2DModel` needs is visible in an original file:
- depth: the number of `joint_blocks`; width: `x_embedder.proj` outputs (64 x depth in the
  published models); patch size and latent channels: that conv's kernel and inputs;
- `pos_embed_max_size`: the square root of `pos_embed`'s token count (192 for SD 3 medium and
  3.5 large, 384 for 3.5 medium);
- text widths: `context_embedder` (T5's 4096 in, the caption projection out) and the pooled
  width `y_embedder.mlp.0` reads (CLIP-L + CLIP-G = 2048);
- SD 3.5's RMS q/k norms (`ln_q` keys; their length is the head width), 3.5 medium's second
  image-only attention (`x_block.attn2`) in its first 13 blocks.
Heads are not: the head width is the q-norm's length when there is one, else 64 as in every
published SD 3 model. Medium, large and large turbo differ only in these shapes (turbo is a
distilled large: the same file structure, meant for cfg 1 and about 4 steps).

The VAE is the SD 1.x/SDXL autoencoder at 16 latent channels without the quant convs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import SD3Transformer2DModel
from transformers import CLIPTextConfig

from latentloom.models.configs import clip_config, norm_groups
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import SD3
from latentloom.models.layout import SD3_TEXT_G, SD3_TEXT_L, UNET_PREFIX, VAE_PREFIX, TextTower

Shapes = Mapping[str, tuple[int, ...]]
HEAD_WIDTH = 64
SD3_SAMPLE_SIZE = 128  # 1024 px / 8: diffusers' default; any size within pos_embed works


def _indices(shapes: Shapes, prefix: str) -> list[int]:
    found = {key[len(prefix) :].split(".", 1)[0] for key in shapes if key.startswith(prefix)}
    return sorted(int(head) for head in found if head.isdigit())


def _shape(shapes: Shapes, key: str, path: str | Path) -> tuple[int, ...]:
    shape = shapes.get(key)
    if shape is None:
        raise UnrecognizedCheckpointError(
            path, f"missing tensor '{key}', needed to work out the SD 3 transformer's structure"
        )
    return shape


def transformer_config(
    shapes: Shapes, path: str | Path, prefix: str = UNET_PREFIX
) -> dict[str, Any]:
    """Keyword arguments for `SD3Transformer2DModel` from an original-layout file's shapes."""
    blocks = _indices(shapes, prefix + "joint_blocks.")
    if not blocks or blocks != list(range(len(blocks))):
        raise UnrecognizedCheckpointError(
            path, f"SD 3 joint blocks {blocks[:8]} are not numbered 0..N-1 without gaps"
        )
    hidden, in_channels, patch, _ = _shape(shapes, prefix + "x_embedder.proj.weight", path)
    tokens = _shape(shapes, prefix + "pos_embed", path)[1]
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise UnrecognizedCheckpointError(
            path, f"pos_embed holds {tokens} positions, not a square grid"
        )
    caption, joint = _shape(shapes, prefix + "context_embedder.weight", path)
    out_features = _shape(shapes, prefix + "final_layer.linear.weight", path)[0]
    ln_q = prefix + "joint_blocks.0.x_block.attn.ln_q.weight"
    head_width = shapes[ln_q][0] if ln_q in shapes else HEAD_WIDTH
    if hidden % head_width:
        raise UnrecognizedCheckpointError(
            path, f"transformer width {hidden} is not a multiple of the head width {head_width}"
        )
    dual = [b for b in blocks if f"{prefix}joint_blocks.{b}.x_block.attn2.qkv.weight" in shapes]
    return {
        "sample_size": SD3_SAMPLE_SIZE,
        "patch_size": patch,
        "in_channels": in_channels,
        "num_layers": len(blocks),
        "attention_head_dim": head_width,
        "num_attention_heads": hidden // head_width,
        "joint_attention_dim": joint,
        "caption_projection_dim": caption,
        "pooled_projection_dim": _shape(shapes, prefix + "y_embedder.mlp.0.weight", path)[1],
        "out_channels": out_features // (patch * patch),
        "pos_embed_max_size": side,
        "dual_attention_layers": tuple(dual),
        "qk_norm": "rms_norm" if ln_q in shapes else None,
    }


def vae_config(shapes: Shapes, path: str | Path, prefix: str = VAE_PREFIX) -> dict[str, Any]:
    """`AutoencoderKL` arguments for SD 3's VAE (no quant convs; scale and shift of the family)."""
    levels = _indices(shapes, prefix + "encoder.down.")
    channels = [
        _shape(shapes, f"{prefix}encoder.down.{i}.block.0.conv1.weight", path)[0] for i in levels
    ]
    if not channels:
        raise UnrecognizedCheckpointError(path, f"no VAE encoder levels ({prefix}encoder.down.N.*)")
    quant = prefix + "quant_conv.weight" in shapes
    return {
        "sample_size": 1024,
        "in_channels": _shape(shapes, prefix + "encoder.conv_in.weight", path)[1],
        "out_channels": _shape(shapes, prefix + "decoder.conv_out.weight", path)[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(channels),
        "up_block_types": ["UpDecoderBlock2D"] * len(channels),
        "block_out_channels": channels,
        "layers_per_block": len(_indices(shapes, prefix + "encoder.down.0.block.")),
        "latent_channels": _shape(shapes, prefix + "decoder.conv_in.weight", path)[1],
        "norm_num_groups": norm_groups(channels),
        "use_quant_conv": quant,
        "use_post_quant_conv": prefix + "post_quant_conv.weight" in shapes,
        "scaling_factor": SD3.vae_scaling_factor,
        "shift_factor": SD3.vae_shift_factor,
    }


def text_towers(shapes: Shapes) -> tuple[TextTower, ...]:
    """The CLIP towers the file holds (each is optional in SD 3 files)."""
    return tuple(
        tower
        for tower in (SD3_TEXT_L, SD3_TEXT_G)
        if any(key.startswith(tower.prefix) for key in shapes)
    )


def sd3_clip_config(shapes: Shapes, tower: TextTower, path: str | Path) -> CLIPTextConfig:
    """CLIP-L (quick_gelu) or CLIP-G: OpenCLIP bigG in transformers' names, so gelu."""
    config = clip_config(shapes, tower, path)
    if tower is SD3_TEXT_G:
        config.hidden_act = "gelu"
    return config


def empty_transformer(config: Mapping[str, Any]) -> SD3Transformer2DModel:
    """The MMDiT with shapes and no storage (the streaming loader fills it)."""
    with torch.device("meta"):
        return SD3Transformer2DModel.from_config(dict(config))  # type: ignore[no-any-return]


def describe(config: Mapping[str, Any], metadata: Mapping[str, str]) -> str:
    """Which published SD 3.x model the shapes match, for the Load Checkpoint report; large turbo
    has large's shapes, so only a file that says "turbo" in its metadata is called that."""
    blocks, dual = config["num_layers"], bool(config["dual_attention_layers"])
    if dual:
        name = f"SD 3.5 medium-shaped ({blocks} blocks with a second image attention)"
    elif config["qk_norm"]:
        name = f"SD 3.5 large-shaped ({blocks} blocks)"
        if any("turbo" in value.lower() for value in metadata.values()):
            name = f"SD 3.5 large turbo ({blocks} blocks): distilled, use cfg 1 and about 4 steps"
    else:
        name = f"SD 3 medium-shaped ({blocks} blocks, no q/k norms)"
    return f"{name}; rectified flow, shift 3.0"
