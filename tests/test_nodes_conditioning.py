"""Conditioning nodes: exact values of Combine, Concat, Average and Zero Out, the fields the set
nodes write (ComfyUI's: Set Area stores pixels // 8), and that inputs are never changed."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from latentloom.api import (
    Conditioning,
    ConditioningEntry,
    FractionArea,
    LatentArea,
    NodeSpec,
)
from tests.support import node_context, pack_module

SPECS: dict[str, NodeSpec] = {spec.id: spec for spec in pack_module("conditioning").NODES}


def run(node_id: str, **inputs: Any) -> Conditioning:
    spec = SPECS[node_id]
    outputs = spec.function(node_context(), **inputs)
    assert list(outputs) == ["conditioning"]
    result = outputs["conditioning"]
    assert isinstance(result, Conditioning)
    return result


def prompt(value: float, tokens: int = 2, pooled: float | None = None) -> Conditioning:
    """One entry whose embeddings are `value` everywhere ([1, tokens, 3])."""
    embeds = torch.full((1, tokens, 3), value)
    return Conditioning.of(embeds, None if pooled is None else torch.full((1, 2), pooled))


def test_every_node_is_named_as_comfyui_and_in_its_category() -> None:
    categories = {spec.aliases[0]: spec.category for spec in SPECS.values()}
    assert categories == {
        "CLIPTextEncode": "conditioning",
        "ConditioningCombine": "conditioning",
        "ConditioningConcat": "conditioning",
        "ConditioningAverage": "conditioning",
        "ConditioningSetArea": "conditioning",
        "ConditioningSetAreaPercentage": "conditioning",
        "ConditioningSetAreaStrength": "conditioning",
        "ConditioningSetMask": "conditioning",
        "ConditioningSetTimestepRange": "advanced/conditioning",
        "ConditioningZeroOut": "advanced/conditioning",
    }


def test_widgets_are_in_comfyuis_order_with_its_defaults() -> None:
    def widgets(node_id: str) -> list[tuple[str, object]]:
        spec = SPECS[node_id]
        return [(i.name, i.default) for i in spec.inputs if i.default is not None]

    assert widgets("conditioning.set_area") == [
        ("width", 64),
        ("height", 64),
        ("x", 0),
        ("y", 0),
        ("strength", 1.0),
    ]
    assert widgets("conditioning.set_mask") == [("strength", 1.0), ("set_cond_area", "default")]
    assert widgets("conditioning.set_timestep_range") == [("start", 0.0), ("end", 1.0)]
    assert widgets("conditioning.average") == [("conditioning_to_strength", 1.0)]


def test_combine_lists_both_inputs_entries_in_order() -> None:
    a, b = (
        prompt(1.0),
        run("conditioning.combine", conditioning_1=prompt(2.0), conditioning_2=prompt(3.0)),
    )
    combined = run("conditioning.combine", conditioning_1=a, conditioning_2=b)
    assert [float(e.embeds[0, 0, 0]) for e in combined.entries] == [1.0, 2.0, 3.0]
    assert combined.entries[0] is a.first


def test_concat_appends_from_s_first_entry_to_every_to_entry() -> None:
    to = run("conditioning.combine", conditioning_1=prompt(1.0, 2), conditioning_2=prompt(2.0, 3))
    source = run("conditioning.combine", conditioning_1=prompt(9.0, 4), conditioning_2=prompt(7.0))
    area = LatentArea(4, 4, 0, 0)
    placed = run(
        "conditioning.set_area", conditioning=to, width=32, height=32, x=0, y=0, strength=1.0
    )
    result = run("conditioning.concat", conditioning_to=placed, conditioning_from=source)
    assert [e.embeds.shape for e in result.entries] == [(1, 6, 3), (1, 7, 3)]
    assert torch.equal(result.entries[0].embeds[0, :, 0], torch.tensor([1.0, 1, 9, 9, 9, 9]))
    assert torch.equal(result.entries[1].embeds[0, :, 0], torch.tensor([2.0, 2, 2, 9, 9, 9, 9]))
    assert all(e.area == area for e in result.entries)  # other fields kept
    assert to.entries[0].embeds.shape == (1, 2, 3)  # input untouched


def test_average_blends_embeddings_and_pooled_cutting_or_padding_from() -> None:
    to = prompt(1.0, tokens=3, pooled=10.0)
    result = run(
        "conditioning.average",
        conditioning_to=to,
        conditioning_from=prompt(5.0, tokens=2, pooled=20.0),
        conditioning_to_strength=0.25,
    )
    # 1 * 0.25 + 5 * 0.75 = 4 where from has tokens; 1 * 0.25 + 0 * 0.75 past its end.
    assert torch.equal(result.first.embeds[0, :, 0], torch.tensor([4.0, 4.0, 0.25]))
    assert result.first.pooled is not None
    assert torch.equal(result.first.pooled, torch.full((1, 2), 17.5))
    cut = run(
        "conditioning.average",
        conditioning_to=prompt(1.0, tokens=2),
        conditioning_from=prompt(5.0, tokens=4, pooled=20.0),
        conditioning_to_strength=0.5,
    )
    assert torch.equal(cut.first.embeds, torch.full((1, 2, 3), 3.0))
    # to has no pooled output: it takes from's (ComfyUI's fallback).
    assert cut.first.pooled is not None and torch.equal(cut.first.pooled, torch.full((1, 2), 20.0))
    assert torch.equal(to.first.embeds, torch.full((1, 3, 3), 1.0))


def test_average_and_concat_refuse_an_empty_from_and_mismatched_widths() -> None:
    with pytest.raises(ValueError) as caught:
        run("conditioning.concat", conditioning_to=prompt(1.0), conditioning_from=Conditioning(()))
    assert str(caught.value) == "conditioning_from has no entries; connect an encoded prompt"
    wide = Conditioning.of(torch.zeros(1, 2, 5))
    with pytest.raises(ValueError) as caught:
        run(
            "conditioning.average",
            conditioning_to=prompt(1.0),
            conditioning_from=wide,
            conditioning_to_strength=0.5,
        )
    assert str(caught.value) == (
        "Conditioning Average: conditioning_to has 3-wide embeddings but conditioning_from has "
        "5; encode both with the same checkpoint's text encoder"
    )


def test_set_area_stores_the_latent_grid_rectangle_and_strength() -> None:
    both = run("conditioning.combine", conditioning_1=prompt(1.0), conditioning_2=prompt(2.0))
    result = run(
        "conditioning.set_area", conditioning=both, width=256, height=128, x=64, y=8, strength=0.6
    )
    for entry in result.entries:
        assert entry.area == LatentArea(height=16, width=32, y=1, x=8)
        assert entry.strength == 0.6 and entry.set_area_to_bounds is False
    assert all(e.area is None for e in both.entries)


def test_set_area_percentage_keeps_fractions_for_sampling_time() -> None:
    result = run(
        "conditioning.set_area_percentage",
        conditioning=prompt(1.0),
        width=0.5,
        height=0.25,
        x=0.5,
        y=0.1,
        strength=2.0,
    )
    assert result.first.area == FractionArea(height=0.25, width=0.5, y=0.1, x=0.5)
    assert result.first.strength == 2.0


def test_set_area_strength_changes_only_strength() -> None:
    placed = run(
        "conditioning.set_area", conditioning=prompt(1.0), width=64, height=64, x=0, y=0, strength=1
    )
    result = run("conditioning.set_area_strength", conditioning=placed, strength=3.5)
    assert result.first.strength == 3.5 and result.first.area == placed.first.area


@pytest.mark.parametrize(("mode", "bounds"), [("default", False), ("mask bounds", True)])
def test_set_mask_stores_mask_its_strength_and_mode(mode: str, bounds: bool) -> None:
    mask = torch.rand(1, 16, 16)
    result = run(
        "conditioning.set_mask",
        conditioning=prompt(1.0),
        mask=mask,
        strength=0.4,
        set_cond_area=mode,
    )
    entry = result.first
    assert entry.mask is mask and entry.mask_strength == 0.4 and entry.strength == 1.0
    assert entry.set_area_to_bounds is bounds


def test_set_timestep_range_stores_percents_and_refuses_an_empty_range() -> None:
    result = run("conditioning.set_timestep_range", conditioning=prompt(1.0), start=0.2, end=0.7)
    assert (result.first.start_percent, result.first.end_percent) == (0.2, 0.7)
    with pytest.raises(ValueError) as caught:
        run("conditioning.set_timestep_range", conditioning=prompt(1.0), start=0.6, end=0.4)
    assert str(caught.value) == (
        "start 0.6 comes after end 0.4: the prompt would never apply; choose start <= end "
        "(0 = the first step, 1 = the last)"
    )


def test_zero_out_zeroes_embeddings_and_pooled_keeping_placement() -> None:
    placed = run(
        "conditioning.set_area",
        conditioning=prompt(3.0, pooled=4.0),
        width=64,
        height=64,
        x=8,
        y=8,
        strength=0.5,
    )
    result = run("conditioning.zero_out", conditioning=placed)
    entry = result.first
    assert torch.equal(entry.embeds, torch.zeros(1, 2, 3))
    assert entry.pooled is not None and torch.equal(entry.pooled, torch.zeros(1, 2))
    assert entry.area == LatentArea(8, 8, 1, 1) and entry.strength == 0.5
    assert float(placed.first.embeds.min()) == 3.0
    no_pooled = run("conditioning.zero_out", conditioning=prompt(1.0)).first
    assert no_pooled.pooled is None


def test_entries_are_conditioning_entries() -> None:
    assert isinstance(
        run("conditioning.zero_out", conditioning=prompt(1.0)).first, ConditioningEntry
    )
