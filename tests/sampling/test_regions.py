"""Resolving conditioning entries against a latent, and grouping them into UNet calls."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from latentloom.models.handles import ConditioningEntry, FractionArea, LatentArea
from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.batching import Job, plan_calls
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.regions import Box, Region, pair_areas, percent_to_sigma, resolve

SCHEDULE = DiscreteSchedule.from_alphas_cumprod(alphas_cumprod())
CPU = torch.device("cpu")


def entry(seed: int = 0, **fields: object) -> ConditioningEntry:
    embeds = torch.randn(1, 77, 8, generator=torch.Generator().manual_seed(seed))
    return replace(ConditioningEntry(embeds), **fields)  # type: ignore[arg-type]


def one(e: ConditioningEntry, size: tuple[int, int] = (16, 16), batch: int = 1) -> Region:
    return resolve((e,), size, batch, SCHEDULE, CPU)[0]


def test_a_plain_entry_covers_the_latent_with_weight_one_at_every_sigma() -> None:
    region = one(entry())
    assert region.box is None and region.is_plain
    assert torch.equal(region.weight, torch.ones(1, 1, 16, 16))
    assert region.sigma_start == float("inf") and region.sigma_end == 0.0
    assert region.applies(14.6) and region.applies(0.0)


def test_an_area_fades_in_along_inner_edges_only() -> None:
    # 8 rows from y=0 (the latent's top edge: no fade), 8 columns from x=4 (both edges inside).
    region = one(entry(area=LatentArea(height=8, width=8, y=0, x=4), strength=0.5))
    assert region.box == Box(y=0, x=4, height=8, width=8)
    ramp = torch.tensor([0.5, 1, 1, 1, 1, 1, 1, 0.5])  # min(8, 8 // 4) = 2 pixels
    rows = torch.tensor([1, 1, 1, 1, 1, 1, 1, 0.5])  # bottom edge at y=8 < 16 fades
    assert torch.equal(region.weight, (0.5 * rows[:, None] * ramp[None, :])[None, None])
    assert not region.is_plain


def test_an_area_is_clamped_to_the_latent_and_one_outside_it_is_refused() -> None:
    assert one(entry(area=LatentArea(12, 12, 8, 10))).box == Box(8, 10, 8, 6)
    with pytest.raises(ValueError) as caught:
        one(entry(area=LatentArea(8, 8, 0, 16)))
    assert str(caught.value) == (
        "a conditioning area of 8x8 at x=16, y=0 (latent pixels) lies outside the 16x16 "
        "latent; move it inside"
    )


def test_fraction_areas_round_against_the_latent_size() -> None:
    # height 0.3 * 20 = 6, width max(1, round(0.01 * 30)) = 1, y round(0.5 * 20) = 10,
    # x round(0.25 * 30) = round(7.5) = 8 (Python rounds half to even).
    area = FractionArea(height=0.3, width=0.01, y=0.5, x=0.25)
    assert one(entry(area=area), size=(20, 30)).box == Box(y=10, x=8, height=6, width=1)


def test_a_mask_is_resized_bilinearly_and_weighted_by_both_strengths() -> None:
    mask = torch.zeros(1, 32, 32)
    mask[:, :, 16:] = 1.0
    region = one(entry(mask=mask, mask_strength=0.5, strength=3.0))
    assert region.box is None and not region.is_plain
    expected = torch.nn.functional.interpolate(mask[None], size=(16, 16), mode="bilinear")
    assert torch.equal(region.weight, expected * 0.5 * 3.0)
    assert float(region.weight[0, 0, 0, 7]) == 0.0 and float(region.weight[0, 0, 0, 8]) == 1.5


def test_mask_bounds_make_the_area_the_masks_box_at_least_8_pixels() -> None:
    mask = torch.zeros(1, 16, 16)
    mask[0, 2:6, 3:13] = 0.25  # 4 rows x 10 columns
    region = one(entry(mask=mask, set_area_to_bounds=True))
    assert region.box == Box(y=2, x=3, height=8, width=10)
    # The weight is the mask cropped to the box (no fade: masks bring their own edges).
    assert torch.equal(region.weight, mask[:, 2:10, 3:13][:, None])
    empty = one(entry(mask=torch.zeros(1, 16, 16), set_area_to_bounds=True))
    assert empty.box == Box(0, 0, 8, 8) and float(empty.weight.abs().max()) == 0.0


def test_a_mask_batch_must_cover_the_latent_batch() -> None:
    assert one(entry(mask=torch.ones(3, 16, 16)), batch=2).weight.shape == (2, 1, 16, 16)
    with pytest.raises(ValueError) as caught:
        one(entry(mask=torch.ones(2, 16, 16)), batch=3)
    assert str(caught.value) == (
        "a conditioning mask batch of 2 cannot cover a latent batch of 3; use one mask or one "
        "per latent"
    )


def test_percent_maps_to_the_training_sigma_at_that_fraction_of_999_steps() -> None:
    assert percent_to_sigma(SCHEDULE, 0.0) == float("inf")
    assert percent_to_sigma(SCHEDULE, 1.0) == 0.0
    sigmas = SCHEDULE.sigmas.float()
    # 0.25 -> timestep 749.25: between training steps 749 and 750 in log-sigma.
    quarter = percent_to_sigma(SCHEDULE, 0.25)
    assert float(sigmas[749]) < quarter < float(sigmas[750])
    assert quarter == pytest.approx(float(SCHEDULE.t_to_sigma(749.25)), rel=1e-6)
    assert percent_to_sigma(SCHEDULE, 0.5) == pytest.approx(float(SCHEDULE.t_to_sigma(499.5)))


def test_a_timestep_range_includes_both_ends() -> None:
    region = one(entry(start_percent=0.25, end_percent=0.5))
    high, low = percent_to_sigma(SCHEDULE, 0.25), percent_to_sigma(SCHEDULE, 0.5)
    assert (region.sigma_start, region.sigma_end) == (high, low)
    assert region.applies(high) and region.applies(low)
    assert not region.applies(high * 1.001) and not region.applies(low * 0.999)


def test_entries_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError) as caught:
        one(entry(start_percent=-0.1))
    assert str(caught.value) == (
        "a conditioning timestep range lies within 0..1, got start -0.1 and end 1.0"
    )
    with pytest.raises(ValueError) as caught:
        one(entry(strength=-1.0))
    assert str(caught.value) == (
        "conditioning strengths must be >= 0, got strength -1.0 and mask strength 1.0"
    )


def test_area_entries_get_a_partner_with_the_other_sides_containing_prompt() -> None:
    base, wide, small = entry(1), entry(2, area=LatentArea(12, 12, 0, 0)), entry(3)
    small = replace(small, area=LatentArea(4, 4, 2, 2), strength=0.3, start_percent=0.2)
    negative_base, negative_wide = entry(4), entry(5, area=LatentArea(12, 12, 0, 0))
    positive = resolve((base, wide, small), (16, 16), 1, SCHEDULE, CPU)
    negative = resolve((negative_base, negative_wide), (16, 16), 1, SCHEDULE, CPU)
    paired_positive, paired_negative = pair_areas(positive, negative)
    # wide finds negative_wide (same area): no partner. small is inside negative_wide, the
    # smallest area containing it: a partner with small's area, weight and timing.
    assert len(paired_negative) == 3
    partner = paired_negative[2]
    assert partner.box == Box(2, 2, 4, 4) and partner.weight is positive[2].weight
    assert partner.entry.embeds is negative_wide.embeds
    assert partner.entry.strength == 0.3 and partner.sigma_start == positive[2].sigma_start
    # negative_wide finds wide, the partner finds small: positive gains nothing.
    assert len(paired_positive) == 3
    # With no area on the other side, the plain entry lends its prompt.
    lone_positive, lone_negative = pair_areas(positive[2:], negative[:1])
    assert len(lone_negative) == 2 and lone_negative[1].entry.embeds is negative_base.embeds
    assert len(lone_positive) == 1


def test_same_size_jobs_share_a_call_within_the_pixel_budget() -> None:
    full, area = Job(16, 16, tokens=77), Job(8, 8, tokens=77)
    assert plan_calls([full, full], pixel_budget=512) == [[0, 1]]
    assert plan_calls([full, area, full, area], pixel_budget=512) == [[0, 2], [1, 3]]
    # Three 8x8 pairs fit the 2 x 16 x 16 budget together; eight do not.
    assert plan_calls([area] * 6, pixel_budget=512) == [[0, 1, 2, 3, 4, 5]]
    assert plan_calls([area] * 9, pixel_budget=512) == [list(range(8)), [8]]


def test_token_lengths_share_a_call_up_to_four_repeats() -> None:
    jobs = [Job(8, 8, tokens=77), Job(8, 8, tokens=154), Job(8, 8, tokens=385)]
    # lcm(77, 154) = 154: 2 repeats; adding 385 makes lcm 770, 10 repeats of 77.
    assert plan_calls(jobs, pixel_budget=10_000) == [[0, 1], [2]]


def test_different_control_sources_never_share_a_call() -> None:
    jobs = [Job(8, 8, 77, control=(1,)), Job(8, 8, 77, control=(2,)), Job(8, 8, 77, (1,))]
    assert plan_calls(jobs, pixel_budget=10_000) == [[0, 2], [1]]
