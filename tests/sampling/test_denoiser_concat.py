"""Concat conditioning: the extra input channels an inpainting UNet reads after x."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from diffusers import UNet2DConditionModel

from latentloom.models.family import SD15
from latentloom.models.handles import Conditioning, DiffusionModel, LatentArea
from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.denoiser import GuidedDenoiser
from tests.sampling.tiny_models import CONTEXT_DIM, conditioning


def inpainting_model() -> DiffusionModel:
    """A tiny UNet with 9 input channels: 4 latent + 1 mask + 4 masked-image latent."""
    torch.manual_seed(0)
    unet: Any = UNet2DConditionModel(
        sample_size=8,
        in_channels=9,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CONTEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    return DiffusionModel(
        unet=unet.eval(),
        family=SD15,
        prediction_type="epsilon",
        alphas_cumprod=alphas_cumprod(),
        source="tiny-inpainting-unet",
    )


@torch.no_grad()
def test_concat_channels_follow_the_scaled_latent_in_both_halves() -> None:
    model = inpainting_model()
    unet: Any = model.unet
    seen: list[torch.Tensor] = []
    unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    concat = torch.rand(1, 5, 8, 8, generator=torch.Generator().manual_seed(2))
    sigma = torch.tensor(2.0)
    denoiser = GuidedDenoiser(model, conditioning(1), conditioning(2), 5.0, concat=concat)
    denoised = denoiser(x, sigma)
    assert len(seen) == 1 and seen[0].shape == (2, 9, 8, 8)
    scaled = x / (sigma**2 + 1) ** 0.5
    assert torch.equal(seen[0][:, :4], torch.cat([scaled, scaled]))
    assert torch.equal(seen[0][:, 4:], torch.cat([concat, concat]))
    assert denoised.shape == (1, 4, 8, 8) and bool(denoised.isfinite().all())


@torch.no_grad()
def test_a_single_concat_serves_the_whole_batch_without_guidance() -> None:
    model = inpainting_model()
    unet: Any = model.unet
    seen: list[torch.Tensor] = []
    unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    concat = torch.rand(1, 5, 8, 8, generator=torch.Generator().manual_seed(2))
    denoiser = GuidedDenoiser(model, conditioning(1), conditioning(2), 1.0, concat=concat)
    denoiser(torch.randn(3, 4, 8, 8), torch.tensor(1.0))
    assert seen[0].shape == (3, 9, 8, 8)
    assert torch.equal(seen[0][:, 4:], concat.expand(3, -1, -1, -1))


@torch.no_grad()
def test_an_area_entry_sees_the_concat_channels_cropped_to_its_area() -> None:
    model = inpainting_model()
    unet: Any = model.unet
    seen: list[torch.Tensor] = []
    unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    area = replace(conditioning(3).first, area=LatentArea(height=4, width=8, y=4, x=0))
    positive = Conditioning((conditioning(1).first, area))
    concat = torch.rand(1, 5, 8, 8, generator=torch.Generator().manual_seed(2))
    denoiser = GuidedDenoiser(model, positive, conditioning(2), 5.0, concat=concat)
    denoiser(torch.randn(1, 4, 8, 8), torch.tensor(2.0))
    assert [tuple(call.shape) for call in seen] == [(2, 9, 8, 8), (2, 9, 4, 8)]
    assert torch.equal(seen[1][:, 4:], concat[:, :, 4:8].expand(2, -1, -1, -1))
