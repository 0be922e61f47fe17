"""Encode Prompt (SDXL) and Encode Prompt (SDXL Refiner): what they encode and the size and
aesthetic-score conditioning they set (the samplers' use of it: test_oracle_refiner.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.family import SDXL
from latentloom.models.handles import ClipTextEncoder, Conditioning, SizeConditioning, TextEncoders
from latentloom.text.encode import encode_prompt
from latentloom.text.tokenizer import OPEN_CLIP_PAD_TOKEN, clip_tokenizer
from tests.node_calls import builtin_registry, node_runner
from tests.text.conftest import tiny_clip_model, tiny_clip_projection_model

LONG = ", ".join(["a very detailed photograph of a lighthouse"] * 12)  # > 75 tokens: 2 chunks


@pytest.fixture(scope="module")
def towers() -> tuple[ClipTextEncoder, ClipTextEncoder]:
    clip_l = ClipTextEncoder(
        model=tiny_clip_model(seed=2),
        tokenizer=clip_tokenizer(),
        layer="penultimate",
        final_norm_on_penultimate=False,
        pad_token_id=49_407,
    )
    big_g = ClipTextEncoder(
        model=tiny_clip_projection_model(seed=3),
        tokenizer=clip_tokenizer(OPEN_CLIP_PAD_TOKEN),
        layer="penultimate",
        final_norm_on_penultimate=False,
        pad_token_id=0,
    )
    return clip_l, big_g


@pytest.fixture(scope="module")
def base_clip(towers: tuple[ClipTextEncoder, ClipTextEncoder]) -> TextEncoders:
    return TextEncoders(family=SDXL, encoders=towers, source="tiny-sdxl")


@pytest.fixture(scope="module")
def refiner_clip(towers: tuple[ClipTextEncoder, ClipTextEncoder]) -> TextEncoders:
    return TextEncoders(family=SDXL, encoders=(towers[1],), source="tiny-sdxl-refiner")


def sdxl_node(call: Any, clip: TextEncoders, text_g: str, text_l: str, **sizes: int) -> Any:
    inputs = {
        "width": 1024,
        "height": 1024,
        "crop_w": 0,
        "crop_h": 0,
        "target_width": 1024,
        "target_height": 1024,
        "weighting": "a1111",
    }
    inputs |= sizes
    return call(
        "conditioning.encode_prompt_sdxl", clip=clip, text_g=text_g, text_l=text_l, **inputs
    )["conditioning"]


def alone(clip: TextEncoders, index: int) -> TextEncoders:
    """One tower of the base CLIP, to encode a prompt with it alone."""
    return TextEncoders(family=SDXL, encoders=(clip.encoders[index],), source=clip.source)


def test_same_text_on_both_towers_is_encode_prompt_plus_sizes(
    base_clip: TextEncoders, tmp_path: Path
) -> None:
    call = node_runner(tmp_path)
    got: Conditioning = sdxl_node(
        call, base_clip, "a cat", "a cat", width=2048, height=1536, crop_w=64, crop_h=32,
        target_width=1024, target_height=768,
    )  # fmt: skip
    plain = encode_prompt(base_clip, "a cat").first
    (entry,) = got.entries
    assert torch.equal(entry.embeds, plain.embeds) and torch.equal(entry.pooled, plain.pooled)
    # (height, width) pairs, as the UNet reads them: orig h, orig w, crop top, crop left, ...
    assert entry.size == SizeConditioning(
        original=(1536, 2048), crop_top_left=(32, 64), target=(768, 1024)
    )


def test_text_l_goes_to_clip_l_and_text_g_to_big_g(base_clip: TextEncoders, tmp_path: Path) -> None:
    entry = sdxl_node(node_runner(tmp_path), base_clip, "a red boat", "watercolour").first
    want_g = encode_prompt(alone(base_clip, 1), "a red boat").first  # bigG alone: pooled too
    assert entry.embeds.shape == (1, 77, 32 + 48)
    assert torch.equal(entry.embeds[..., 32:], want_g.embeds)
    assert torch.equal(entry.pooled, want_g.pooled)
    # CLIP-L's part: the same as when both towers read "watercolour".
    both_l = encode_prompt(base_clip, "watercolour").first
    assert torch.equal(entry.embeds[..., :32], both_l.embeds[..., :32])


def test_the_shorter_prompt_is_padded_with_the_empty_prompt(
    base_clip: TextEncoders, tmp_path: Path
) -> None:
    entry = sdxl_node(node_runner(tmp_path), base_clip, LONG, "watercolour").first
    assert entry.embeds.shape == (1, 154, 80)  # bigG: two chunks; CLIP-L: one + the empty one
    empty_l = encode_prompt(base_clip, "").first.embeds[..., :32]
    assert torch.equal(entry.embeds[:, 77:, :32], empty_l)
    long_g = encode_prompt(base_clip, LONG).first.embeds[..., 32:]
    assert torch.equal(entry.embeds[..., 32:], long_g)


def test_sdxl_node_refuses_a_refiner_clip(refiner_clip: TextEncoders, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        sdxl_node(node_runner(tmp_path), refiner_clip, "a", "b")
    assert str(caught.value) == (
        "text_g and text_l need the SDXL base's two text encoders (CLIP-L and OpenCLIP bigG), "
        "but tiny-sdxl-refiner is an SDXL refiner's CLIP (OpenCLIP bigG alone); connect an SDXL "
        "base checkpoint's CLIP, or use Encode Prompt (SDXL Refiner) / Encode Prompt for this one"
    )


def test_refiner_node_sets_the_aesthetic_score_and_size(
    refiner_clip: TextEncoders, tmp_path: Path
) -> None:
    got = node_runner(tmp_path)(
        "conditioning.encode_prompt_sdxl_refiner",
        clip=refiner_clip, ascore=2.5, width=768, height=512, text="blurry", weighting="a1111",
    )["conditioning"]  # fmt: skip
    (entry,) = got.entries
    plain = encode_prompt(refiner_clip, "blurry").first
    assert entry.embeds.shape == (1, 77, 48)  # bigG's penultimate states alone
    assert torch.equal(entry.embeds, plain.embeds) and torch.equal(entry.pooled, plain.pooled)
    assert entry.size == SizeConditioning(original=(512, 768), aesthetic_score=2.5)
    assert plain.size is None  # plain Encode Prompt leaves the sampler's defaults


def test_specs_follow_comfyui_inputs_and_defaults() -> None:
    specs = builtin_registry().specs
    sdxl = specs["conditioning.encode_prompt_sdxl"]
    assert [(i.name, i.default) for i in sdxl.inputs if i.is_widget] == [
        ("width", 1024), ("height", 1024), ("crop_w", 0), ("crop_h", 0), ("target_width", 1024),
        ("target_height", 1024), ("text_g", ""), ("text_l", ""), ("weighting", "a1111"),
    ]  # fmt: skip
    refiner = specs["conditioning.encode_prompt_sdxl_refiner"]
    assert [(i.name, i.default) for i in refiner.inputs if i.is_widget] == [
        ("ascore", 6.0), ("width", 1024), ("height", 1024), ("text", ""), ("weighting", "a1111"),
    ]  # fmt: skip
    assert refiner.input("ascore").max == 1000.0  # type: ignore[union-attr]
    assert sdxl.aliases == ("CLIPTextEncodeSDXL",)
    assert refiner.aliases == ("CLIPTextEncodeSDXLRefiner",)
