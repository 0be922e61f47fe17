"""Clip skip against transformers' own hidden states: `hidden_states[layer]`, plus the final
layer norm where the family applies it (SD 1.x, SD 2.x), raw for SDXL; the range is pinned."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from latentloom.models.handles import ClipTextEncoder, TextEncoders
from latentloom.text.clip_skip import ClipSkipError, set_last_layer
from latentloom.text.encode import encode_prompt

PROMPT = "a photo of a cat, sitting on a red sofa"


def transformers_state(encoder: ClipTextEncoder, layer: int, *, norm: bool) -> torch.Tensor:
    ids = encoder.tokenizer(PROMPT, padding="max_length", max_length=77, return_tensors="pt")[
        "input_ids"
    ]
    with torch.no_grad():
        hidden = encoder.model(input_ids=ids, output_hidden_states=True).hidden_states[layer]
        if norm:
            tower: Any = getattr(encoder.model, "text_model", encoder.model)
            hidden = tower.final_layer_norm(hidden)
    return hidden


def test_sd15_minus_two_is_the_normalised_penultimate_state(sd15_clip: TextEncoders) -> None:
    skipped = encode_prompt(set_last_layer(sd15_clip, -2), PROMPT).first.embeds
    expected = transformers_state(sd15_clip.encoders[0], -2, norm=True)
    assert torch.equal(skipped, expected)
    assert not torch.allclose(skipped, encode_prompt(sd15_clip, PROMPT).first.embeds)


def test_sd15_minus_one_is_the_default(sd15_clip: TextEncoders) -> None:
    default = encode_prompt(sd15_clip, PROMPT).first.embeds
    last = encode_prompt(set_last_layer(sd15_clip, -1), PROMPT).first.embeds
    torch.testing.assert_close(last, default, rtol=0, atol=1e-6)


def test_sd2_sets_the_layer_directly(sd2_clip: TextEncoders) -> None:
    encoder = sd2_clip.encoders[0]  # three layers; the default is the penultimate, normalised
    default = encode_prompt(sd2_clip, PROMPT).first.embeds
    assert torch.equal(encode_prompt(set_last_layer(sd2_clip, -2), PROMPT).first.embeds, default)
    for layer in (-1, -3):
        skipped = encode_prompt(set_last_layer(sd2_clip, layer), PROMPT).first.embeds
        assert torch.equal(skipped, transformers_state(encoder, layer, norm=True))


def test_sdxl_reads_raw_hidden_states_and_keeps_the_pooled_output(sdxl_clip: TextEncoders) -> None:
    default = encode_prompt(sdxl_clip, PROMPT)
    skipped = encode_prompt(set_last_layer(sdxl_clip, -1), PROMPT)
    expected = torch.cat(
        [transformers_state(encoder, -1, norm=False) for encoder in sdxl_clip.encoders], dim=-1
    )
    assert torch.equal(skipped.first.embeds, expected)
    assert skipped.first.pooled is not None and default.first.pooled is not None
    assert torch.equal(skipped.first.pooled, default.first.pooled)
    minus_two = encode_prompt(set_last_layer(sdxl_clip, -2), PROMPT).first.embeds
    assert torch.equal(minus_two, default.first.embeds)


def test_the_input_handle_is_unchanged(sd15_clip: TextEncoders) -> None:
    skipped = set_last_layer(sd15_clip, -2)
    assert [e.stop_at_layer for e in sd15_clip.encoders] == [None]
    assert [e.stop_at_layer for e in skipped.encoders] == [-2]
    assert skipped.encoders[0].model is sd15_clip.encoders[0].model


@pytest.mark.parametrize("layer", [-3, 0, 1])
def test_a_layer_outside_the_tower_names_the_input_and_range(
    sd15_clip: TextEncoders, layer: int
) -> None:
    with pytest.raises(ClipSkipError) as raised:
        set_last_layer(sd15_clip, layer)
    assert str(raised.value) == (
        f"stop_at_clip_layer {layer} is outside this SD 1.x text encoder's range: it has 2 "
        "layers, so use -1 to -2"
    )
