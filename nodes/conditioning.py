"""Text conditioning: encode a prompt, then combine, blend and place its entries.

CONDITIONING is a list of entries (`Conditioning`); each node returns a new list and never
changes its input. The set-nodes copy every entry with one field changed, the way ComfyUI's
do, so a Set Area after a Combine places both prompts. Where an entry applies (area, mask,
strength, timestep range) is resolved against the latent only when sampling
(`sampling/regions.py`), so the same conditioning serves any image size.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, cast

import torch

from latentloom.api import (
    MAX_SIDE,
    Conditioning,
    ConditioningEntry,
    FractionArea,
    Input,
    LatentArea,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    TextEncoders,
    encode_prompt,
    enum_input,
    float_input,
    int_input,
    prompt_embeddings,
    socket,
    string_input,
)

Weighting = Literal["a1111", "comfy"]
WEIGHTINGS = ("a1111", "comfy")


def encode_prompt_node(
    ctx: NodeContext, clip: TextEncoders, text: str, weighting: str
) -> dict[str, object]:
    chosen = cast(Weighting, weighting)
    return {"conditioning": encode_prompt(clip, text, chosen, embeddings=ctx.folders)}


def combine(
    ctx: NodeContext, conditioning_1: Conditioning, conditioning_2: Conditioning
) -> dict[str, object]:
    return {"conditioning": Conditioning(conditioning_1.entries + conditioning_2.entries)}


def concat(
    ctx: NodeContext, conditioning_to: Conditioning, conditioning_from: Conditioning
) -> dict[str, object]:
    source = _first(conditioning_from, "conditioning_from")
    entries = []
    for entry in conditioning_to.entries:
        _check_width(entry, source, "Conditioning Concat")
        entries.append(replace(entry, embeds=torch.cat([entry.embeds, source.embeds], dim=1)))
    return {"conditioning": Conditioning(tuple(entries))}


def average(
    ctx: NodeContext,
    conditioning_to: Conditioning,
    conditioning_from: Conditioning,
    conditioning_to_strength: float,
) -> dict[str, object]:
    source = _first(conditioning_from, "conditioning_from")
    weight = conditioning_to_strength
    entries = []
    for entry in conditioning_to.entries:
        _check_width(entry, source, "Conditioning Average")
        # `from` is cut or zero-padded to `to`'s token length, as ComfyUI does.
        tokens = entry.embeds.shape[1]
        other = source.embeds[:, :tokens]
        if other.shape[1] < tokens:
            padding = other.new_zeros(1, tokens - other.shape[1], other.shape[2])
            other = torch.cat([other, padding], dim=1)
        pooled = entry.pooled if entry.pooled is not None else source.pooled
        if pooled is not None and source.pooled is not None:
            pooled = pooled * weight + source.pooled * (1.0 - weight)
        embeds = entry.embeds * weight + other * (1.0 - weight)
        entries.append(replace(entry, embeds=embeds, pooled=pooled))
    return {"conditioning": Conditioning(tuple(entries))}


def set_area(
    ctx: NodeContext,
    conditioning: Conditioning,
    width: int,
    height: int,
    x: int,
    y: int,
    strength: float,
) -> dict[str, object]:
    # Sides and offsets are multiples of 8 (the INT step), so the latent grid holds them exactly.
    area = LatentArea(height=height // 8, width=width // 8, y=y // 8, x=x // 8)
    return _set(conditioning, area=area, strength=strength, set_area_to_bounds=False)


def set_area_percentage(
    ctx: NodeContext,
    conditioning: Conditioning,
    width: float,
    height: float,
    x: float,
    y: float,
    strength: float,
) -> dict[str, object]:
    area = FractionArea(height=height, width=width, y=y, x=x)
    return _set(conditioning, area=area, strength=strength, set_area_to_bounds=False)


def set_area_strength(
    ctx: NodeContext, conditioning: Conditioning, strength: float
) -> dict[str, object]:
    return _set(conditioning, strength=strength)


def set_mask(
    ctx: NodeContext,
    conditioning: Conditioning,
    mask: torch.Tensor,
    strength: float,
    set_cond_area: str,
) -> dict[str, object]:
    bounds = set_cond_area == "mask bounds"
    return _set(conditioning, mask=mask, mask_strength=strength, set_area_to_bounds=bounds)


def set_timestep_range(
    ctx: NodeContext, conditioning: Conditioning, start: float, end: float
) -> dict[str, object]:
    if start > end:
        raise ValueError(
            f"start {start} comes after end {end}: the prompt would never apply; "
            f"choose start <= end (0 = the first step, 1 = the last)"
        )
    return _set(conditioning, start_percent=start, end_percent=end)


def zero_out(ctx: NodeContext, conditioning: Conditioning) -> dict[str, object]:
    entries = tuple(
        replace(
            entry,
            embeds=torch.zeros_like(entry.embeds),
            pooled=None if entry.pooled is None else torch.zeros_like(entry.pooled),
        )
        for entry in conditioning.entries
    )
    return {"conditioning": Conditioning(entries)}


def _set(conditioning: Conditioning, **fields: object) -> dict[str, object]:
    """Every entry copied with `fields` changed."""
    entries = tuple(replace(entry, **fields) for entry in conditioning.entries)  # type: ignore[arg-type]
    return {"conditioning": Conditioning(entries)}


def _first(conditioning: Conditioning, name: str) -> ConditioningEntry:
    # ComfyUI reads only the first entry of `from` too (and logs a warning for the rest).
    if not conditioning.entries:
        raise ValueError(f"{name} has no entries; connect an encoded prompt")
    return conditioning.entries[0]


def _check_width(entry: ConditioningEntry, source: ConditioningEntry, node: str) -> None:
    if entry.embeds.shape[2] != source.embeds.shape[2]:
        raise ValueError(
            f"{node}: conditioning_to has {entry.embeds.shape[2]}-wide embeddings but "
            f"conditioning_from has {source.embeds.shape[2]}; encode both with the same "
            f"checkpoint's text encoder"
        )


def _strength(tooltip: str) -> Input:
    return float_input("strength", 1.0, min=0.0, max=10.0, step=0.01, tooltip=tooltip)


def _fraction(name: str, default: float) -> Input:
    return float_input(name, default, min=0.0, max=1.0, step=0.01)


def _pixels(name: str, default: int, minimum: int) -> Input:
    return int_input(name, default, min=minimum, max=MAX_SIDE, step=8)


_CONDITIONING = Output("conditioning", SocketType.CONDITIONING)
AREA_STRENGTH = "How much the prompt counts against the others where it applies."

NODES = [
    NodeSpec(
        id="conditioning.encode_prompt",
        display_name="Encode Prompt",
        aliases=("CLIPTextEncode", "CLIP Text Encode (Prompt)"),
        category="conditioning",
        description="Encodes a prompt with the checkpoint's text encoder(s), prompts longer than "
        "77 tokens included; embedding:name puts a textual-inversion embedding from the "
        "embeddings folder in its place. Weighting 'a1111': (word:1.2) and (word) emphasis, "
        "[word] de-emphasis, BREAK, weights scaled then the mean restored. Weighting 'comfy' (what "
        "ComfyUI's CLIPTextEncode does, set on imported graphs): (word:1.2) sets the weight, "
        "[ ] and BREAK are plain text, and a weighted token moves away from the empty prompt's "
        "encoding by its weight.",
        inputs=(
            socket("clip", SocketType.CLIP),
            # `embedding:name` files are checked before anything runs.
            string_input("text", "", multiline=True, references=prompt_embeddings),
            enum_input(
                "weighting",
                WEIGHTINGS,
                "a1111",
                tooltip="How (word:1.2) emphasis is read and applied: AUTOMATIC1111's way or "
                "ComfyUI's.",
            ),
        ),
        outputs=(Output("conditioning", SocketType.CONDITIONING),),
        function=encode_prompt_node,
    ),
    NodeSpec(
        id="conditioning.combine",
        display_name="Conditioning Combine",
        aliases=("ConditioningCombine", "Conditioning (Combine)"),
        category="conditioning",
        description="Both inputs' entries in one list: the sampler evaluates each and averages "
        "their predictions (weighted by strength and mask where they overlap). With areas or "
        "masks this is regional prompting.",
        inputs=(
            socket("conditioning_1", SocketType.CONDITIONING),
            socket("conditioning_2", SocketType.CONDITIONING),
        ),
        outputs=(_CONDITIONING,),
        function=combine,
    ),
    NodeSpec(
        id="conditioning.concat",
        display_name="Conditioning Concat",
        aliases=("ConditioningConcat", "Conditioning (Concat)"),
        category="conditioning",
        description="Appends the tokens of conditioning_from's first entry to every entry of "
        "conditioning_to: one longer prompt, each part encoded on its own.",
        inputs=(
            socket("conditioning_to", SocketType.CONDITIONING),
            socket("conditioning_from", SocketType.CONDITIONING),
        ),
        outputs=(_CONDITIONING,),
        function=concat,
    ),
    NodeSpec(
        id="conditioning.average",
        display_name="Conditioning Average",
        aliases=("ConditioningAverage", "Conditioning (Average)"),
        category="conditioning",
        description="Blends every entry of conditioning_to with conditioning_from's first entry: "
        "to x strength + from x (1 - strength), embeddings and pooled output alike. from is cut "
        "or zero-padded to to's token length.",
        inputs=(
            socket("conditioning_to", SocketType.CONDITIONING),
            socket("conditioning_from", SocketType.CONDITIONING),
            float_input("conditioning_to_strength", 1.0, min=0.0, max=1.0, step=0.01),
        ),
        outputs=(_CONDITIONING,),
        function=average,
    ),
    NodeSpec(
        id="conditioning.set_area",
        display_name="Conditioning Set Area",
        aliases=("ConditioningSetArea", "Conditioning (Set Area)"),
        category="conditioning",
        description="Makes the prompt apply only inside a rectangle, in pixels (multiples of "
        "8). The sampler runs the model on that crop; the prompt fades in over up to 8 latent "
        "pixels along edges inside the image. Combine it with a prompt for the whole image.",
        inputs=(
            socket("conditioning", SocketType.CONDITIONING),
            _pixels("width", 64, 64),
            _pixels("height", 64, 64),
            _pixels("x", 0, 0),
            _pixels("y", 0, 0),
            _strength(AREA_STRENGTH),
        ),
        outputs=(_CONDITIONING,),
        function=set_area,
    ),
    NodeSpec(
        id="conditioning.set_area_percentage",
        display_name="Conditioning Set Area (Percentage)",
        aliases=("ConditioningSetAreaPercentage", "Conditioning (Set Area with Percentage)"),
        category="conditioning",
        description="Set Area with the rectangle as fractions (0..1) of the image's width and "
        "height, so it fits any size.",
        inputs=(
            socket("conditioning", SocketType.CONDITIONING),
            _fraction("width", 1.0),
            _fraction("height", 1.0),
            _fraction("x", 0.0),
            _fraction("y", 0.0),
            _strength(AREA_STRENGTH),
        ),
        outputs=(_CONDITIONING,),
        function=set_area_percentage,
    ),
    NodeSpec(
        id="conditioning.set_area_strength",
        display_name="Conditioning Set Area Strength",
        aliases=("ConditioningSetAreaStrength",),
        category="conditioning",
        description="Sets how much the prompt counts against the others where it applies.",
        inputs=(socket("conditioning", SocketType.CONDITIONING), _strength(AREA_STRENGTH)),
        outputs=(_CONDITIONING,),
        function=set_area_strength,
    ),
    NodeSpec(
        id="conditioning.set_mask",
        display_name="Conditioning Set Mask",
        aliases=("ConditioningSetMask", "Conditioning (Set Mask)"),
        category="conditioning",
        description="Makes the prompt apply where the mask is set, weighted by its value x "
        "strength. 'default' runs the model on the whole image; 'mask bounds' only on the "
        "mask's bounding box (faster, and the prompt fills that box).",
        inputs=(
            socket("conditioning", SocketType.CONDITIONING),
            socket("mask", SocketType.MASK),
            _strength("Multiplies the mask's values."),
            enum_input("set_cond_area", ("default", "mask bounds"), "default"),
        ),
        outputs=(_CONDITIONING,),
        function=set_mask,
    ),
    NodeSpec(
        id="conditioning.set_timestep_range",
        display_name="Conditioning Set Timestep Range",
        aliases=("ConditioningSetTimestepRange",),
        category="advanced/conditioning",
        description="Makes the prompt apply only during part of sampling: start and end as "
        "fractions of the model's noise schedule (0 = pure noise, 1 = the end). Combine two "
        "ranges to switch prompts part-way.",
        inputs=(
            socket("conditioning", SocketType.CONDITIONING),
            float_input("start", 0.0, min=0.0, max=1.0, step=0.001),
            float_input("end", 1.0, min=0.0, max=1.0, step=0.001),
        ),
        outputs=(_CONDITIONING,),
        function=set_timestep_range,
    ),
    NodeSpec(
        id="conditioning.zero_out",
        display_name="Conditioning Zero Out",
        aliases=("ConditioningZeroOut",),
        category="advanced/conditioning",
        description="Every entry's embeddings and pooled output set to zeros (a truly empty "
        "negative for models trained that way); areas, masks and ranges are kept.",
        inputs=(socket("conditioning", SocketType.CONDITIONING),),
        outputs=(_CONDITIONING,),
        function=zero_out,
    ),
]
