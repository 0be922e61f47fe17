"""Per-entry SDXL size conditioning and the refiner's aesthetic score, as the UNet receives them.

A forward pre-hook on a real tiny SDXL UNet records `added_cond_kwargs["time_ids"]` of every
call the guided denoiser makes, so the tests pin exactly what reaches the network.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from diffusers import UNet2DConditionModel
from torch import Tensor

from latentloom.models.family import SDXL
from latentloom.models.handles import (
    Conditioning,
    ConditioningEntry,
    DiffusionModel,
    SizeConditioning,
)
from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.denoiser import GuidedDenoiser
from tests.sampling.tiny_models import CONTEXT_DIM, POOLED_DIM, TIME_EMBED_DIM, tiny_model

X = torch.zeros(1, 4, 8, 8)  # 64 x 64 pixels


def record_time_ids(model: DiffusionModel) -> list[Tensor]:
    seen: list[Tensor] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["added_cond_kwargs"]["time_ids"].clone())

    cast(torch.nn.Module, model.unet).register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def entry(seed: int, pooled_width: int, size: SizeConditioning | None = None) -> ConditioningEntry:
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, 7, CONTEXT_DIM, generator=generator)
    return ConditioningEntry(embeds, torch.randn(1, pooled_width, generator=generator), size=size)


def test_base_entries_carry_their_own_size_in_shared_calls() -> None:
    model = tiny_model(sdxl=True)
    seen = record_time_ids(model)
    crop = SizeConditioning(original=(512, 768), crop_top_left=(16, 32))
    target = SizeConditioning(original=(1024, 1024), target=(896, 640))
    positive = Conditioning((entry(1, POOLED_DIM, crop), entry(2, POOLED_DIM, target)))
    negative = Conditioning((entry(3, POOLED_DIM),))
    GuidedDenoiser(model, positive, negative, 5.0)(X, torch.tensor(3.0))
    # One row per entry, the negative's default (the latent's 64 x 64) first; sizes share calls,
    # which hold at most two whole-latent regions (a plain guided step's pixels).
    assert [ids.tolist() for ids in seen] == [
        [[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [512.0, 768.0, 16.0, 32.0, 512.0, 768.0]],
        [[1024.0, 1024.0, 0.0, 0.0, 896.0, 640.0]],
    ]


def tiny_refiner() -> DiffusionModel:
    """A refiner-shaped UNet: pooled width = context width, plus five time embeddings."""
    torch.manual_seed(0)
    unet: Any = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CONTEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=CONTEXT_DIM + 5 * TIME_EMBED_DIM,
    )
    return DiffusionModel(unet.eval(), SDXL, "epsilon", alphas_cumprod(), "tiny-refiner")


def test_refiner_gets_aesthetic_scores_by_side() -> None:
    model = tiny_refiner()
    seen = record_time_ids(model)
    positive = Conditioning((entry(1, CONTEXT_DIM),))
    negative = Conditioning((entry(2, CONTEXT_DIM),))
    GuidedDenoiser(model, positive, negative, 5.0)(X, torch.tensor(3.0))
    # One call on [uncond, cond]: 2.5 for the negative, 6.0 for the positive (the defaults).
    assert [ids.tolist() for ids in seen] == [
        [[64.0, 64.0, 0.0, 0.0, 2.5], [64.0, 64.0, 0.0, 0.0, 6.0]]
    ]


def test_refiner_entry_score_and_size_win() -> None:
    model = tiny_refiner()
    seen = record_time_ids(model)
    size = SizeConditioning(original=(768, 512), crop_top_left=(8, 0), aesthetic_score=7.5)
    positive = Conditioning((entry(1, CONTEXT_DIM, size),))
    GuidedDenoiser(model, positive, positive, 1.0)(X, torch.tensor(3.0))
    assert [ids.tolist() for ids in seen] == [[[768.0, 512.0, 8.0, 0.0, 7.5]]]
