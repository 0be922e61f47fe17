"""SDXL refiner checkpoints of random weights in the real single-file layout.

The tiny one keeps the refiner's structure in miniature (`refiner.py`): four levels whose
first and last have no attention, attention of one depth (2 here, 4 in the real model) on
the middle levels and in the middle block, bigG alone as `conditioner.embedders.0.model.*`, and
a `label_emb` reading the pooled embedding plus five time embeddings. Its VAE and bigG are
the tiny SDXL base's of the same seed, as the real refiner shares the base's VAE and bigG, so
a base -> refiner graph hands over latents that the same VAE decodes.

`refiner_configs()` is the published full-size structure (diffusers'
stable-diffusion-xl-refiner-1.0 configs), for detection tests at full shapes on the meta device.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from latentloom.models.build import Modules, text_model
from latentloom.models.configs import ModelConfigs, TextEncoderConfig
from latentloom.models.export import write_original_checkpoint
from latentloom.models.family import SDXL
from latentloom.models.keymap import KeyMap
from latentloom.models.layout import REFINER_TEXT_TOWERS
from latentloom.models.refiner import REFINER_TIME_IDS
from latentloom.models.tiny import (
    SDXL_TINY_TIME_DIM,
    TINY_METADATA_KEY,
    TINY_TEXT_WIDTH,
    _round_to,
    _seeded,
    tiny_clip_config,
    tiny_vae_config,
)

REFINER_KIND = "sdxl-refiner"
_DOWN = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
# Seed offsets of the tiny SDXL base's parts (tiny.tiny_modules), so the same seed shares them.
_BASE_VAE_SEED, _BASE_BIG_G_SEED, _REFINER_UNET_SEED = 1, 3, 5


def tiny_refiner_unet_config() -> dict[str, Any]:
    channels = [32, 64, 64, 64]
    return {
        "sample_size": 1024 // 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": _DOWN,
        "up_block_types": [name.replace("Down", "Up") for name in reversed(_DOWN)],
        "block_out_channels": channels,
        "layers_per_block": 1,
        "cross_attention_dim": TINY_TEXT_WIDTH,
        "attention_head_dim": [1] * len(channels),  # 64-wide heads; one below width 64
        "use_linear_projection": True,
        # Per level as configs.py derives it: depth 2 where attention is, and in the middle
        # block (which diffusers builds at the last level's depth); level 0 has none.
        "transformer_layers_per_block": [1, 2, 2, 2],
        "norm_num_groups": 32,
        "upcast_attention": False,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": SDXL_TINY_TIME_DIM,
        "projection_class_embeddings_input_dim": TINY_TEXT_WIDTH
        + REFINER_TIME_IDS * SDXL_TINY_TIME_DIM,
    }


def tiny_refiner_configs() -> ModelConfigs:
    tower = REFINER_TEXT_TOWERS[0]
    return ModelConfigs(
        unet=tiny_refiner_unet_config(),
        vae=tiny_vae_config("sdxl"),
        text_encoders=(TextEncoderConfig(tower, tiny_clip_config(tower)),),
    )


def tiny_refiner_modules(*, seed: int = 0, storage_dtype: torch.dtype = torch.float16) -> Modules:
    """The fp32 modules a tiny refiner checkpoint holds."""
    configs = tiny_refiner_configs()
    (item,) = configs.text_encoders
    build = functools.partial(text_model, item.config, item.tower.with_projection)
    big_g = _round_to(_seeded(seed * 16 + _BASE_BIG_G_SEED, build), storage_dtype)
    unet = _seeded(seed * 16 + _REFINER_UNET_SEED, lambda: UNet2DConditionModel(**configs.unet))
    vae = _seeded(seed * 16 + _BASE_VAE_SEED, lambda: AutoencoderKL(**configs.vae))
    return Modules(
        unet=_round_to(unet, storage_dtype),
        vae=_round_to(vae, storage_dtype),
        text=((item.tower.component, big_g),),
    )


def refiner_keymap(modules: Modules) -> KeyMap:
    return KeyMap(
        SDXL,
        modules.config_of("unet"),
        modules.config_of("vae"),
        modules.text_roots(),
        REFINER_TEXT_TOWERS,
    )


def make_tiny_refiner_checkpoint(
    out_path: str | Path, *, seed: int = 0, dtype: torch.dtype = torch.float16
) -> Path:
    """Write a tiny SDXL refiner checkpoint in the original single-file layout."""
    modules = tiny_refiner_modules(seed=seed, storage_dtype=dtype)
    path = Path(out_path)
    write_original_checkpoint(
        path,
        modules.components(),
        refiner_keymap(modules),
        dtype=dtype,
        metadata={TINY_METADATA_KEY: REFINER_KIND, "latentloom.seed": str(seed)},
    )
    return path


def refiner_configs() -> ModelConfigs:
    """The published SDXL refiner structure: UNet and the 32-layer OpenCLIP bigG tower."""
    tower = REFINER_TEXT_TOWERS[0]
    clip = tiny_clip_config(tower)
    clip.update(
        {
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_hidden_layers": 32,
            "num_attention_heads": 20,
            "projection_dim": 1280,
        }
    )
    channels = [384, 768, 1536, 1536]
    unet = {
        **tiny_refiner_unet_config(),
        "block_out_channels": channels,
        "layers_per_block": 2,
        "cross_attention_dim": 1280,
        "attention_head_dim": [width // 64 for width in channels],
        "transformer_layers_per_block": [1, 4, 4, 4],
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2560,
    }
    vae = {
        **tiny_vae_config("sdxl"),
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "norm_num_groups": 32,
    }
    return ModelConfigs(unet=unet, vae=vae, text_encoders=(TextEncoderConfig(tower, clip),))
