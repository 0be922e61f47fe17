"""Tiny random-weight diffusers UNets wrapped as DiffusionModel handles, for denoiser tests."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import UNet2DConditionModel
from torch import Tensor

from latentloom.models.family import SD15, SDXL
from latentloom.models.handles import Conditioning, DiffusionModel, PredictionType
from latentloom.models.schedule import alphas_cumprod as sd_alphas_cumprod

CONTEXT_DIM = 32
POOLED_DIM = 16
TIME_EMBED_DIM = 8
LATENT_SHAPE = (1, 4, 8, 8)


def tiny_unet(*, sdxl: bool = False, seed: int = 0, in_channels: int = 4) -> Any:
    """in_channels 9: an inpainting UNet (latent, mask, masked-image latent)."""
    config: dict[str, Any] = {
        "sample_size": 8,
        "in_channels": in_channels,
        "out_channels": 4,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": CONTEXT_DIM,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    }
    if sdxl:
        config |= {
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": TIME_EMBED_DIM,
            "projection_class_embeddings_input_dim": POOLED_DIM + 6 * TIME_EMBED_DIM,
        }
    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(**config)
    return unet.eval()


def tiny_model(
    *,
    sdxl: bool = False,
    prediction_type: PredictionType = "epsilon",
    alphas_cumprod: Tensor | None = None,
    in_channels: int = 4,
) -> DiffusionModel:
    """A tiny model; pass a diffusers scheduler's float32 alphas to share its exact schedule."""
    return DiffusionModel(
        unet=tiny_unet(sdxl=sdxl, in_channels=in_channels),
        family=SDXL if sdxl else SD15,
        prediction_type=prediction_type,
        alphas_cumprod=sd_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod,
        source="tiny-test-unet",
    )


def conditioning(seed: int, tokens: int = 77, *, pooled: bool = False) -> Conditioning:
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, tokens, CONTEXT_DIM, generator=generator)
    pooled_embeds = torch.randn(1, POOLED_DIM, generator=generator) if pooled else None
    return Conditioning.of(embeds, pooled_embeds)


def latent_noise(seed: int, shape: tuple[int, ...] = LATENT_SHAPE) -> Tensor:
    """The initial noise `sample()` draws for `seed`: CPU generator, float32."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
