"""Derive diffusers / transformers configs from the tensor shapes of an original checkpoint.

Everything structural is visible in the shapes: channel widths per level (the first resnet's
output conv), resnets per level (how many input blocks sit between downsamplers), which levels
have attention (a `proj_in` exists), transformer depth (how many `transformer_blocks`), the
context width (`attn2.to_k` input), conv vs linear `proj_in` (4-D vs 2-D), SDXL's extra
conditioning (`label_emb`), the VAE's widths and latent channels, CLIP's widths and depths.
The SDXL refiner (detection variant "refiner") differs only in what the shapes show, plus two
rules: its `label_emb` reads 5 size numbers (no target size; an aesthetic score instead) and
its deepest level has no attention, so the middle block's depth is its own.

Three things are not, and follow fixed rules that the tiny writer (`tiny.py`) obeys too:
- attention heads: SD 1.x uses 8 heads at every level; SD 2.x, SDXL and every CLIP tower use
  64-wide heads. A width that is not a multiple of 64 (only tiny test models) gets one head.
- GroupNorm groups: 32, or the largest of 16, 8, 4, 2, 1 that divides every width (tiny models).
- activation: Hugging Face-layout CLIP (OpenAI ViT-L) uses quick_gelu, OpenCLIP towers gelu.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import CLIPTextConfig

from latentloom.models.detect import Detection, inpainting_in_channels
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import Family
from latentloom.models.layout import (
    END_OF_TEXT_ID,
    REFINER_TEXT_TOWERS,
    START_OF_TEXT_ID,
    TEXT_TOWERS,
    UNET_PREFIX,
    VAE_PREFIX,
    TextTower,
)

Shapes = Mapping[str, tuple[int, ...]]

HEAD_WIDTH = 64
SD15_UNET_HEADS = 8
ADD_TIME_IDS = 6  # SDXL: original size, crop offset, target size
REFINER_TIME_IDS = 5  # SDXL refiner: original size, crop offset, aesthetic score


@dataclass(frozen=True)
class TextEncoderConfig:
    tower: TextTower
    config: CLIPTextConfig


@dataclass(frozen=True)
class ModelConfigs:
    """Keyword arguments for `UNet2DConditionModel` / `AutoencoderKL`, and the CLIP configs."""

    unet: Mapping[str, Any]
    vae: Mapping[str, Any]
    text_encoders: tuple[TextEncoderConfig, ...]


@dataclass(frozen=True)
class _Level:
    channels: int
    attention: bool
    depth: int
    context_dim: int | None
    linear_proj: bool | None


def pixel_size(detection: Detection) -> int:
    """The training resolution, for configs' `sample_size` (a default; any size works)."""
    if detection.family.name == "sdxl":
        return 1024
    v_model = detection.prediction_type == "v_prediction"
    return 768 if detection.family.name == "sd2" and v_model else 512


def heads_for_width(width: int) -> int:
    """Heads of width 64; one head for widths that are not a multiple of 64 (tiny models)."""
    return width // HEAD_WIDTH if width % HEAD_WIDTH == 0 else 1


def norm_groups(widths: Iterable[int]) -> int:
    """GroupNorm groups: 32 for real models, the largest power of two dividing tiny widths."""
    widths = list(widths)
    return next(g for g in (32, 16, 8, 4, 2, 1) if all(width % g == 0 for width in widths))


class _ShapeReader:
    """Shape lookups that fail with a message naming the tensor the config needed."""

    def __init__(self, shapes: Shapes, path: str | Path) -> None:
        self.shapes = shapes
        self.path = path

    def __call__(self, key: str) -> tuple[int, ...]:
        shape = self.shapes.get(key)
        if shape is None:
            raise UnrecognizedCheckpointError(
                self.path, f"missing tensor '{key}', needed to work out the model's structure"
            )
        return shape

    def has(self, key: str) -> bool:
        return key in self.shapes

    def indices(self, prefix: str) -> list[int]:
        """The distinct integers N in keys `prefix + "N.rest"`."""
        found = set()
        for key in self.shapes:
            if key.startswith(prefix):
                head = key[len(prefix) :].split(".", 1)[0]
                if head.isdigit():
                    found.add(int(head))
        return sorted(found)

    def fail(self, problem: str) -> UnrecognizedCheckpointError:
        return UnrecognizedCheckpointError(self.path, problem)


# --- UNet --------------------------------------------------------------------------------


def _unet_levels(read: _ShapeReader) -> tuple[int, list[_Level]]:
    blocks = read.indices(UNET_PREFIX + "input_blocks.")
    downsamplers = [n for n in blocks if read.has(f"{UNET_PREFIX}input_blocks.{n}.0.op.weight")]
    levels = len(downsamplers) + 1
    per_level, remainder = divmod(len(blocks) - 1 - len(downsamplers), levels)
    if remainder or per_level < 1 or blocks != list(range(len(blocks))):
        raise read.fail(
            f"UNet input blocks {blocks} with downsamplers at {downsamplers} do not form "
            "levels of equal depth"
        )
    found = []
    for level in range(levels):
        block = f"{UNET_PREFIX}input_blocks.{1 + level * (per_level + 1)}."
        attention = read.has(block + "1.proj_in.weight")
        found.append(
            _Level(
                channels=read(block + "0.out_layers.3.weight")[0],
                attention=attention,
                depth=len(read.indices(block + "1.transformer_blocks.")) if attention else 1,
                context_dim=(
                    read(block + "1.transformer_blocks.0.attn2.to_k.weight")[1]
                    if attention
                    else None
                ),
                linear_proj=len(read(block + "1.proj_in.weight")) == 2 if attention else None,
            )
        )
    return per_level, found


def _attention_facts(read: _ShapeReader, levels: list[_Level]) -> tuple[int, bool]:
    """The context width and projection kind, which every attention level must share."""
    contexts = {level.context_dim for level in levels if level.attention}
    projections = {level.linear_proj for level in levels if level.attention}
    if len(contexts) != 1 or len(projections) != 1:
        raise read.fail(
            f"UNet attention levels disagree (context widths {sorted(map(str, contexts))}, "
            f"linear proj_in {sorted(map(str, projections))})"
        )
    mid_depth = len(read.indices(UNET_PREFIX + "middle_block.1.transformer_blocks."))
    # A deepest level without attention (the SDXL refiner) leaves the middle block its own depth.
    if mid_depth != levels[-1].depth and levels[-1].attention:
        raise read.fail(
            f"UNet middle block has {mid_depth} transformer blocks but the deepest level has "
            f"{levels[-1].depth}; diffusers cannot build that"
        )
    return contexts.pop() or 0, bool(projections.pop())


def _addition_embedding(
    read: _ShapeReader, family: Family, pooled_dim: int | None, time_ids: int = ADD_TIME_IDS
) -> dict[str, Any]:
    """SDXL's `label_emb`: pooled text embedding + Fourier features of the six size numbers."""
    key = UNET_PREFIX + "label_emb.0.0.weight"
    if not read.has(key):
        return {}
    if family.name != "sdxl" or pooled_dim is None:
        raise read.fail(f"a class-conditioned UNet ({key}) is only supported for SDXL")
    adm_in = read(key)[1]
    time_dim, remainder = divmod(adm_in - pooled_dim, time_ids)
    if remainder or time_dim <= 0:
        raise read.fail(
            f"{key} takes {adm_in} inputs, which is not the pooled text width {pooled_dim} "
            f"plus {time_ids} equal time embeddings"
        )
    return {
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": time_dim,
        "projection_class_embeddings_input_dim": adm_in,
    }


def _check_input_channels(read: _ShapeReader, family: Family, in_channels: int) -> None:
    """The latent's channels, or an inpainting model's (latent, mask, masked-image latent)."""
    allowed = (family.latent_channels, inpainting_in_channels(family))
    if in_channels not in allowed:
        raise read.fail(
            f"the UNet takes {in_channels} input channels; supported: {allowed[0]} (the "
            f"latent alone) or {allowed[1]} (an inpainting model: latent, mask and masked-image "
            "latent)"
        )


def unet_config(
    shapes: Shapes, detection: Detection, pooled_dim: int | None, path: str | Path
) -> dict[str, Any]:
    read = _ShapeReader(shapes, path)
    family = detection.family
    per_level, levels = _unet_levels(read)
    context_dim, linear_proj = _attention_facts(read, levels)
    channels = [level.channels for level in levels]
    conv_in = read(UNET_PREFIX + "input_blocks.0.0.weight")
    _check_input_channels(read, family, conv_in[1])
    depths = [level.depth for level in levels]
    if not levels[-1].attention:  # diffusers builds the middle block at the last level's depth
        depths[-1] = len(read.indices(UNET_PREFIX + "middle_block.1.transformer_blocks."))
    config: dict[str, Any] = {
        "sample_size": pixel_size(detection) // family.downscale,
        "in_channels": conv_in[1],
        "out_channels": read(UNET_PREFIX + "out.2.weight")[0],
        "down_block_types": [
            "CrossAttnDownBlock2D" if level.attention else "DownBlock2D" for level in levels
        ],
        "up_block_types": [
            "CrossAttnUpBlock2D" if level.attention else "UpBlock2D" for level in levels[::-1]
        ],
        "block_out_channels": channels,
        "layers_per_block": per_level,
        "cross_attention_dim": context_dim,
        "attention_head_dim": (
            SD15_UNET_HEADS if family.name == "sd15" else [heads_for_width(c) for c in channels]
        ),
        "use_linear_projection": linear_proj,
        "transformer_layers_per_block": 1 if set(depths) == {1} else depths,
        "norm_num_groups": norm_groups(channels),
        # As diffusers' SD 2.1 (768-v) config: attention scores in fp32 avoid fp16 overflow.
        "upcast_attention": family.name == "sd2" and detection.prediction_type == "v_prediction",
    }
    time_embed_dim = read(UNET_PREFIX + "time_embed.0.weight")[0]
    if time_embed_dim != 4 * channels[0]:
        config["time_embedding_dim"] = time_embed_dim
    refiner = detection.variant == "refiner"
    time_ids = REFINER_TIME_IDS if refiner else ADD_TIME_IDS
    config.update(_addition_embedding(read, family, pooled_dim, time_ids))
    return config


# --- VAE ---------------------------------------------------------------------------------


def vae_config(shapes: Shapes, detection: Detection, path: str | Path) -> dict[str, Any]:
    read = _ShapeReader(shapes, path)
    levels = read.indices(VAE_PREFIX + "encoder.down.")
    channels = [read(f"{VAE_PREFIX}encoder.down.{i}.block.0.conv1.weight")[0] for i in levels]
    if not channels:
        raise read.fail(f"no VAE encoder levels ({VAE_PREFIX}encoder.down.N.*)")
    return {
        "sample_size": pixel_size(detection),
        "in_channels": read(VAE_PREFIX + "encoder.conv_in.weight")[1],
        "out_channels": read(VAE_PREFIX + "decoder.conv_out.weight")[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(channels),
        "up_block_types": ["UpDecoderBlock2D"] * len(channels),
        "block_out_channels": channels,
        "layers_per_block": len(read.indices(VAE_PREFIX + "encoder.down.0.block.")),
        "latent_channels": read(VAE_PREFIX + "post_quant_conv.weight")[0],
        "norm_num_groups": norm_groups(channels),
        "scaling_factor": detection.family.vae_scaling_factor,
    }


# --- CLIP --------------------------------------------------------------------------------


def hf_clip_root(shapes: Shapes, tower: TextTower) -> str:
    """Hugging Face-layout keys sit under `text_model.`, except in some older files."""
    root = tower.prefix + "text_model."
    return root if any(key.startswith(root) for key in shapes) else tower.prefix


def _clip_dimensions(read: _ShapeReader, tower: TextTower) -> dict[str, Any]:
    if tower.layout == "hf_clip":
        root = hf_clip_root(read.shapes, tower)
        vocab, hidden = read(root + "embeddings.token_embedding.weight")
        return {
            "vocab_size": vocab,
            "hidden_size": hidden,
            "max_position_embeddings": read(root + "embeddings.position_embedding.weight")[0],
            "num_hidden_layers": len(read.indices(root + "encoder.layers.")),
            "intermediate_size": read(root + "encoder.layers.0.mlp.fc1.weight")[0],
            "hidden_act": "quick_gelu",
            "projection_dim": hidden,
        }
    root = tower.prefix
    vocab, hidden = read(root + "token_embedding.weight")
    projection = read(root + "text_projection")[1] if tower.with_projection else hidden
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "max_position_embeddings": read(root + "positional_embedding")[0],
        "num_hidden_layers": len(read.indices(root + "transformer.resblocks.")),
        "intermediate_size": read(root + "transformer.resblocks.0.mlp.c_fc.weight")[0],
        "hidden_act": "gelu",
        "projection_dim": projection,
    }


def clip_config(shapes: Shapes, tower: TextTower, path: str | Path) -> CLIPTextConfig:
    dimensions = _clip_dimensions(_ShapeReader(shapes, path), tower)
    return CLIPTextConfig(
        **dimensions,
        num_attention_heads=heads_for_width(dimensions["hidden_size"]),
        layer_norm_eps=1e-5,
        bos_token_id=START_OF_TEXT_ID,
        eos_token_id=END_OF_TEXT_ID,
        pad_token_id=tower.pad_token_id,
    )


# --- all together ------------------------------------------------------------------------


def derive_configs(shapes: Shapes, detection: Detection, path: str | Path) -> ModelConfigs:
    """All component configs, checked against each other (text width = UNet context width)."""
    refiner = detection.variant == "refiner"
    towers = REFINER_TEXT_TOWERS if refiner else TEXT_TOWERS[detection.family.name]
    text = tuple(TextEncoderConfig(t, clip_config(shapes, t, path)) for t in towers)
    pooled = next((item.config.projection_dim for item in text if item.tower.with_projection), None)
    unet = unet_config(shapes, detection, pooled, path)
    text_width = sum(item.config.hidden_size for item in text)
    if text_width != unet["cross_attention_dim"]:
        raise UnrecognizedCheckpointError(
            path,
            f"the UNet attends to {unet['cross_attention_dim']}-wide text embeddings but the "
            f"text encoder(s) give {text_width}; the file mixes parts of different models",
        )
    vae = vae_config(shapes, detection, path)
    return ModelConfigs(unet=unet, vae=vae, text_encoders=text)
