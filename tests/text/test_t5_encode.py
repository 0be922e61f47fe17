"""SD 3 and FLUX prompt encoding against diffusers' own encode_prompt on the same tiny modules."""

from __future__ import annotations

import pytest
import torch
from diffusers import FluxPipeline, StableDiffusion3Pipeline
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from latentloom.models.family import FAMILIES
from latentloom.models.handles import ClipTextEncoder, T5TextEncoder, TextEncoders
from latentloom.models.t5_encoder import build_t5_encoder, t5_text_encoder
from latentloom.models.tiny_t5 import tiny_t5_state_dict
from latentloom.text.encode import encode_prompt
from latentloom.text.t5_encode import encode_flux, encode_sd3, encode_t5
from latentloom.text.tokenizer import OPEN_CLIP_PAD_TOKEN, clip_tokenizer
from tests.text.conftest import tiny_clip_config

PROMPT = "a photo of a cat, sitting on a red sofa"


def _clip(seed: int, width: int, *, projection: bool, big_g: bool = False) -> ClipTextEncoder:
    torch.manual_seed(seed)
    config = tiny_clip_config(width, pad_token_id=0 if big_g else 1)
    model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
    return ClipTextEncoder(
        model=model.eval(),
        tokenizer=clip_tokenizer(OPEN_CLIP_PAD_TOKEN if big_g else "<|endoftext|>"),
        layer="penultimate",
        final_norm_on_penultimate=False,
        pad_token_id=0 if big_g else 49_407,
    )


def _t5(family: str) -> T5TextEncoder:
    return t5_text_encoder(build_t5_encoder(tiny_t5_state_dict(seed=7)), family)


@pytest.fixture(scope="module")
def sd3() -> TextEncoders:
    encoders = (_clip(1, 8, projection=True), _clip(2, 16, projection=True, big_g=True))
    return TextEncoders(FAMILIES["sd3"], (*encoders, _t5("sd3")), "tiny-sd3")


@pytest.fixture(scope="module")
def flux() -> TextEncoders:
    return TextEncoders(FAMILIES["flux"], (_clip(3, 16, projection=False), _t5("flux")), "tiny")


def test_sd3_matches_diffusers_encode_prompt(sd3: TextEncoders) -> None:
    clip_l, clip_g, t5 = sd3.encoders
    assert isinstance(clip_l, ClipTextEncoder) and isinstance(clip_g, ClipTextEncoder)
    assert isinstance(t5, T5TextEncoder)
    pipe = StableDiffusion3Pipeline(
        transformer=None,
        scheduler=None,
        vae=None,
        text_encoder=clip_l.model,
        tokenizer=clip_l.tokenizer,
        text_encoder_2=clip_g.model,
        tokenizer_2=clip_g.tokenizer,
        text_encoder_3=t5.model,
        tokenizer_3=t5.tokenizer,
    )
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(  # type: ignore[attr-defined]
            PROMPT, PROMPT, PROMPT, do_classifier_free_guidance=False, max_sequence_length=77
        )
    ours = encode_prompt(sd3, PROMPT).first
    assert ours.embeds.shape == (1, 77 + 77, 32) and ours.pooled is not None
    assert ours.pooled.shape == (1, 8 + 16)
    torch.testing.assert_close(ours.embeds, embeds, rtol=0, atol=0)
    torch.testing.assert_close(ours.pooled, pooled, rtol=0, atol=0)


def test_flux_matches_diffusers_encode_prompt(flux: TextEncoders) -> None:
    clip_l, t5 = flux.encoders
    pipe = FluxPipeline(
        scheduler=None,
        vae=None,
        text_encoder=clip_l.model,
        tokenizer=clip_l.tokenizer,
        text_encoder_2=t5.model,
        tokenizer_2=t5.tokenizer,
        transformer=None,
    )
    with torch.no_grad():
        embeds, pooled, _ = pipe.encode_prompt(  # type: ignore[attr-defined]
            PROMPT, PROMPT, max_sequence_length=256
        )
    ours = encode_prompt(flux, PROMPT).first
    assert ours.embeds.shape == (1, 256, 32) and ours.pooled is not None
    torch.testing.assert_close(ours.embeds, embeds, rtol=0, atol=0)
    torch.testing.assert_close(ours.pooled, pooled, rtol=0, atol=0)


def test_long_t5_prompts_are_kept_whole(flux: TextEncoders) -> None:
    t5 = flux.encoders[1]
    assert isinstance(t5, T5TextEncoder)
    assert encode_t5(t5, " ".join(["cat"] * 300)).shape == (1, 301, 32)
    assert encode_t5(t5, "").shape == (1, 256, 32)


def test_sd3_with_t5_alone_and_without_t5(sd3: TextEncoders) -> None:
    only_t5 = TextEncoders(sd3.family, (sd3.encoders[2],), "t5 only")
    entry = encode_prompt(only_t5, PROMPT).first
    assert entry.embeds.shape == (1, 77, 32) and entry.pooled is not None
    assert torch.equal(entry.pooled, torch.zeros(1, 2048))
    no_t5 = TextEncoders(sd3.family, sd3.encoders[:2], "clip only")
    entry = encode_prompt(no_t5, PROMPT).first
    assert entry.embeds.shape == (1, 77, 4096)  # T5-XXL's width, zero-padded as ComfyUI does
    assert torch.equal(entry.embeds[..., 24:], torch.zeros(1, 77, 4096 - 24))


def test_sd3_empty_padding_none_leaves_encoders_out(sd3: TextEncoders) -> None:
    full = encode_sd3(sd3, clip_l=PROMPT, clip_g=PROMPT, t5xxl=PROMPT).first
    no_t5 = encode_sd3(sd3, clip_l=PROMPT, clip_g=PROMPT, t5xxl=None).first
    assert torch.equal(no_t5.embeds, full.embeds[:, :77])
    # Only CLIP-L left out: it reads the empty prompt, as ComfyUI pads it.
    l_out = encode_sd3(sd3, clip_l=None, clip_g=PROMPT, t5xxl=None).first
    l_empty = encode_sd3(sd3, clip_l="", clip_g=PROMPT, t5xxl=None).first
    assert torch.equal(l_out.embeds, l_empty.embeds)
    nothing = encode_sd3(sd3, clip_l=None, clip_g=None, t5xxl=None).first
    assert torch.equal(nothing.embeds, torch.zeros(1, 77, 32))


def test_t5_emphasis_comfy_moves_weighted_tokens_from_the_empty_prompt(
    flux: TextEncoders,
) -> None:
    t5 = flux.encoders[1]
    assert isinstance(t5, T5TextEncoder)
    plain = encode_t5(t5, "red cat", "comfy")
    weighted = encode_t5(t5, "red (cat:1.5)", "comfy")
    empty = encode_t5(t5, "", "comfy")
    cat = t5.tokenizer("cat", add_special_tokens=False).input_ids
    red = t5.tokenizer("red ", add_special_tokens=False).input_ids
    start, stop = len(red), len(red) + len(cat)
    # ComfyUI tokenizes each run apart, so the unweighted positions are the plain encoding's
    # only where the runs tokenize the same; the weighted ones follow z_empty + w (z - z_empty).
    expected = empty + 1.5 * (plain - empty)
    if t5.tokenizer("red cat", add_special_tokens=False).input_ids == red + cat:
        torch.testing.assert_close(weighted[:, start:stop], expected[:, start:stop])
        assert torch.equal(weighted[:, :start], plain[:, :start])
    assert not torch.equal(weighted, plain)


def test_flux_guidance_is_carried_on_the_entry(flux: TextEncoders) -> None:
    entry = encode_flux(flux, clip_l=PROMPT, t5xxl=PROMPT, guidance=3.5).first
    assert entry.guidance == 3.5
    assert encode_prompt(flux, PROMPT).first.guidance is None


def test_flux_without_t5_is_refused(flux: TextEncoders) -> None:
    clip_only = TextEncoders(flux.family, flux.encoders[:1], "clip_l.safetensors")
    with pytest.raises(ValueError) as caught:
        encode_prompt(clip_only, PROMPT)
    assert str(caught.value) == (
        "FLUX CLIP from clip_l.safetensors has no T5 encoder, and FLUX reads its prompt through "
        "T5; load CLIP-L and T5-XXL together with Dual CLIP Loader (type flux)"
    )
