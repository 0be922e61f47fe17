"""The guided denoiser with several conditioning entries: areas, masks, timestep ranges.

Expectations are computed by hand from the tiny UNet's raw outputs on the same batches the
denoiser makes (so they are exact, not approximations): each side's prediction is the
per-pixel average of its entries' predictions weighted by strength x mask (x the area's edge
fade), then guidance, then the epsilon -> x0 conversion.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.models.handles import Conditioning, ConditioningEntry, DiffusionModel, LatentArea
from latentloom.sampling.denoiser import GuidedDenoiser
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.regions import percent_to_sigma
from latentloom.sampling.run import sample
from latentloom.sampling.schedules import compute_sigmas
from tests.sampling.tiny_models import conditioning, tiny_model

CFG = 5.0
SIGMA = torch.tensor(2.0)
X = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(7))
BASE, NEGATIVE = conditioning(1).first, conditioning(2).first
REGIONAL = conditioning(3).first


@torch.no_grad()
def raw(model: DiffusionModel, x: Tensor, entries: list[ConditioningEntry]) -> list[Tensor]:
    """The UNet's eps predictions for `entries` on `x`, in one call, as the denoiser makes it."""
    unet: Any = model.unet
    timestep = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod).sigma_to_nearest_t(SIGMA)
    x_in = torch.cat([x] * len(entries)) / (SIGMA**2 + 1) ** 0.5
    embeds = torch.cat([e.embeds for e in entries])
    output = unet(x_in, timestep.float(), encoder_hidden_states=embeds, return_dict=False)[0]
    return list(output.split(x.shape[0]))


def x0(eps: Tensor, x: Tensor = X) -> Tensor:
    return x - SIGMA * eps


def record_calls(model: DiffusionModel) -> list[tuple[tuple[int, ...], Tensor]]:
    """(input shape, text embeddings) of every UNet call: a hook on the real module."""
    calls: list[tuple[tuple[int, ...], Tensor]] = []

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        calls.append((tuple(args[0].shape), kwargs["encoder_hidden_states"].clone()))

    unet: Any = model.unet
    unet.register_forward_pre_hook(hook, with_kwargs=True)
    return calls


def denoise(model: DiffusionModel, positive: list[ConditioningEntry], cfg: float = CFG) -> Tensor:
    denoiser = GuidedDenoiser(model, Conditioning(tuple(positive)), Conditioning((NEGATIVE,)), cfg)
    with torch.no_grad():
        return denoiser(X, SIGMA)


def test_an_area_entry_changes_only_its_region_by_the_weighted_blend() -> None:
    model = tiny_model()
    area = replace(REGIONAL, area=LatentArea(height=8, width=8, y=4, x=6), strength=0.7)
    plain = denoise(model, [BASE])
    regional = denoise(model, [BASE, area])
    inside = (slice(None), slice(None), slice(4, 12), slice(6, 14))
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[4:12, 6:14] = False
    assert torch.equal(regional[..., outside], plain[..., outside])
    # By hand: the base pair on the whole latent, the area pair (the negative prompt lent to
    # the area) on the crop; weight 0.7 fading in over 2 pixels on all four (inner) edges.
    uncond, cond = raw(model, X, [NEGATIVE, BASE])
    area_uncond, area_cond = raw(model, X[inside], [NEGATIVE, area])
    ramp = torch.tensor([0.5, 1, 1, 1, 1, 1, 1, 0.5])
    weight = 0.7 * ramp[:, None] * ramp[None, :]
    blended_cond = (cond[inside] + weight * area_cond) / (1 + weight)
    blended_uncond = (uncond[inside] + weight * area_uncond) / (1 + weight)
    expected = x0(blended_uncond + CFG * (blended_cond - blended_uncond), X[inside])
    torch.testing.assert_close(regional[inside], expected, rtol=0, atol=1e-5)
    assert (regional[inside] - plain[inside]).abs().min() > 0  # every pixel of it changed


def test_a_mask_entry_weighs_in_only_where_the_mask_is_nonzero() -> None:
    model = tiny_model()
    mask = torch.zeros(1, 32, 32)
    mask[:, :, 16:] = 1.0  # right half, at twice the latent's resolution
    masked = replace(REGIONAL, mask=mask, mask_strength=0.5, strength=2.0)
    regional = denoise(model, [BASE, masked])
    # Resized bilinearly, the mask is 0 on columns 0..7 and 1 on 8..15: weight 1.0 there.
    # A mask has no area, so the negative gets no partner. Three whole-latent inputs exceed
    # a plain step's two, so the mask entry gets a call of its own.
    uncond, cond = raw(model, X, [NEGATIVE, BASE])
    (mask_cond,) = raw(model, X, [masked])
    blended = torch.cat([cond[..., :8], (cond[..., 8:] + mask_cond[..., 8:]) / 2], dim=-1)
    expected = x0(uncond + CFG * (blended - uncond))
    torch.testing.assert_close(regional, expected, rtol=0, atol=1e-5)
    calls = record_calls(model)
    denoise(model, [BASE, masked])
    assert [shape for shape, _ in calls] == [(2, 4, 16, 16), (1, 4, 16, 16)]
    assert torch.equal(calls[0][1], torch.cat([NEGATIVE.embeds, BASE.embeds]))
    assert torch.equal(calls[1][1], masked.embeds)
    left = denoise(model, [BASE])[..., :8]
    torch.testing.assert_close(regional[..., :8], left, rtol=0, atol=1e-6)


def test_pixels_no_positive_entry_covers_predict_zero_for_that_side() -> None:
    """ComfyUI's semantics: an uncovered pixel's cond x0 is 0, so guidance pushes away from
    the uncond prediction there (x0 = uncond + cfg * (0 - uncond))."""
    model = tiny_model()
    area = replace(REGIONAL, area=LatentArea(height=8, width=16, y=0, x=0))
    regional = denoise(model, [area])
    (uncond,) = raw(model, X, [NEGATIVE])
    bottom = x0(uncond)[..., 8:, :]
    torch.testing.assert_close(regional[..., 8:, :], bottom * (1 - CFG), rtol=0, atol=1e-5)


def test_cfg_one_skips_the_uncond_entries_and_their_area_partners() -> None:
    model = tiny_model()
    area = replace(REGIONAL, area=LatentArea(height=8, width=8, y=0, x=0))
    calls = record_calls(model)
    denoise(model, [BASE, area], cfg=1.0)
    assert [shape for shape, _ in calls] == [(1, 4, 16, 16), (1, 4, 8, 8)]
    calls.clear()
    denoise(model, [BASE, area])
    assert [shape for shape, _ in calls] == [(2, 4, 16, 16), (2, 4, 8, 8)]


def test_same_size_areas_share_one_call_and_different_sizes_do_not() -> None:
    model = tiny_model()
    quarters = [
        replace(conditioning(10 + i).first, area=LatentArea(8, 8, 8 * (i // 2), 8 * (i % 2)))
        for i in range(3)
    ]
    calls = record_calls(model)
    denoise(model, [BASE, *quarters])
    # The base pair, then three area pairs (6 x 8 x 8 pixels fit a plain step's 2 x 16 x 16).
    assert [shape for shape, _ in calls] == [(2, 4, 16, 16), (6, 4, 8, 8)]
    negatives, positives = calls[1][1][:3], calls[1][1][3:]
    assert torch.equal(negatives, NEGATIVE.embeds.expand(3, -1, -1))
    assert torch.equal(positives, torch.cat([q.embeds for q in quarters]))
    calls.clear()
    sizes = [replace(q, area=LatentArea(4 + 2 * i, 8, 0, 0)) for i, q in enumerate(quarters)]
    denoise(model, [BASE, *sizes])
    assert [shape[0] for shape, _ in calls] == [2, 2, 2, 2]


def test_timestep_ranges_switch_prompts_at_the_right_step() -> None:
    model = tiny_model()
    early = replace(conditioning(4).first, end_percent=0.5)
    late = replace(conditioning(5).first, start_percent=0.5)
    calls = record_calls(model)
    sample(
        model,
        Conditioning((early, late)),
        Conditioning((NEGATIVE,)),
        torch.zeros(1, 4, 8, 8),
        seed=1,
        steps=6,
        cfg=CFG,
        sampler="euler",
        scheduler="karras",
    )
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    sigmas = compute_sigmas("karras", schedule, 6, 1.0, discard_penultimate=False)[:-1]
    boundary = percent_to_sigma(schedule, 0.5)
    # Interpolated at t = 499.5 (in float32, as ComfyUI does: float64 differs in the last bit).
    assert boundary == pytest.approx(float(schedule.t_to_sigma(499.5)), rel=1e-6)
    # Karras sigmas 14.6, 6.08, 2.23, 0.69, 0.17, 0.03 against the boundary 1.6156.
    assert [float(s) >= boundary for s in sigmas] == [True, True, True, False, False, False]

    def prompt(embeds: Tensor) -> str:
        return "early" if torch.equal(embeds, early.embeds) else "late"

    seen = [[prompt(e[None]) for e in embeds[1:]] for _, embeds in calls]
    assert seen == [["early"]] * 3 + [["late"]] * 3


def test_sdxl_entries_carry_their_own_pooled_output_and_the_whole_images_size() -> None:
    model = tiny_model(sdxl=True)
    base, negative = conditioning(1, pooled=True).first, conditioning(2, pooled=True).first
    area = replace(conditioning(3, pooled=True).first, area=LatentArea(8, 8, 0, 8))
    seen: list[dict[str, Tensor]] = []

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append({k: v.clone() for k, v in kwargs["added_cond_kwargs"].items()})

    unet: Any = model.unet
    unet.register_forward_pre_hook(hook, with_kwargs=True)
    denoiser = GuidedDenoiser(model, Conditioning((base, area)), Conditioning((negative,)), CFG)
    with torch.no_grad():
        denoiser(X, SIGMA)
    assert len(seen) == 2
    assert base.pooled is not None and negative.pooled is not None and area.pooled is not None
    assert torch.equal(seen[0]["text_embeds"], torch.cat([negative.pooled, base.pooled]))
    # The area's partner on the negative side borrows the negative prompt's pooled output.
    assert torch.equal(seen[1]["text_embeds"], torch.cat([negative.pooled, area.pooled]))
    whole = torch.tensor([[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]]).expand(2, -1)
    assert all(torch.equal(call["time_ids"], whole) for call in seen)
