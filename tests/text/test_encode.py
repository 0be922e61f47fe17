"""encode_prompt against diffusers' own prompt encoding, plus chunking and emphasis rules."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from transformers import CLIPTextModel

from latentloom.models.handles import ClipTextEncoder, TextEncoders
from latentloom.text.encode import TokenChunk, chunk_tokens, chunk_tokens_comfy, encode_prompt
from latentloom.text.prompt_syntax import Break

PROMPT = "a photo of a cat, sitting on a red sofa"


def sd_pipeline(
    encoder: ClipTextEncoder, model: CLIPTextModel | None = None
) -> StableDiffusionPipeline:
    # Only the text half is needed for encode_prompt; diffusers accepts None for the rest.
    return StableDiffusionPipeline(
        vae=None,
        text_encoder=model or encoder.model,
        tokenizer=encoder.tokenizer,
        unet=None,
        scheduler=None,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def diffusers_sd_embeds(
    encoder: ClipTextEncoder, prompt: str, model: CLIPTextModel | None = None
) -> torch.Tensor:
    embeds, _ = sd_pipeline(encoder, model).encode_prompt(prompt, "cpu", 1, False)
    return embeds


def test_sd15_matches_diffusers_exactly(sd15_clip: TextEncoders) -> None:
    conditioning = encode_prompt(sd15_clip, PROMPT)
    assert conditioning.first.embeds.shape == (1, 77, 32)
    assert conditioning.first.embeds.dtype == torch.float32
    assert conditioning.first.pooled is None
    assert torch.equal(
        conditioning.first.embeds, diffusers_sd_embeds(sd15_clip.encoders[0], PROMPT)
    )


def test_empty_prompt_is_one_chunk_matching_diffusers(sd15_clip: TextEncoders) -> None:
    conditioning = encode_prompt(sd15_clip, "")
    assert conditioning.first.embeds.shape == (1, 77, 32)
    assert torch.equal(conditioning.first.embeds, diffusers_sd_embeds(sd15_clip.encoders[0], ""))


def test_sd2_penultimate_with_final_norm_matches_a_truncated_tower(sd2_clip: TextEncoders) -> None:
    # SD 2.x checkpoints in diffusers layout ship a text tower with its last layer removed, so
    # its last_hidden_state *is* the normed penultimate state: an independent oracle.
    encoder = sd2_clip.encoders[0]
    config = copy.deepcopy(encoder.model.config)
    config.num_hidden_layers -= 1
    truncated = CLIPTextModel(config).eval()
    state = {k: v for k, v in encoder.model.state_dict().items() if ".layers.2." not in k}
    truncated.load_state_dict(state)
    expected = diffusers_sd_embeds(encoder, PROMPT, model=truncated)
    conditioning = encode_prompt(sd2_clip, PROMPT)
    torch.testing.assert_close(conditioning.first.embeds, expected, rtol=0, atol=1e-6)


def test_sdxl_matches_diffusers(sdxl_clip: TextEncoders) -> None:
    first, second = sdxl_clip.encoders
    pipeline = StableDiffusionXLPipeline(
        vae=None,
        text_encoder=first.model,
        text_encoder_2=second.model,
        tokenizer=first.tokenizer,
        tokenizer_2=second.tokenizer,
        unet=None,
        scheduler=None,
        add_watermarker=False,
    )
    embeds, _, pooled, _ = pipeline.encode_prompt(
        PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False
    )
    conditioning = encode_prompt(sdxl_clip, PROMPT)
    assert conditioning.first.embeds.shape == (1, 77, 32 + 48)
    assert conditioning.first.pooled is not None and conditioning.first.pooled.shape == (1, 48)
    torch.testing.assert_close(conditioning.first.embeds, embeds, rtol=0, atol=1e-6)
    torch.testing.assert_close(conditioning.first.pooled, pooled, rtol=0, atol=1e-6)


def test_weight_one_everywhere_changes_nothing(sd15_clip: TextEncoders) -> None:
    plain = encode_prompt(sd15_clip, "a photo of a cat").first.embeds
    assert torch.equal(encode_prompt(sd15_clip, "a (photo:1.0) of (a:1) cat").first.embeds, plain)


def test_emphasis_scales_only_weighted_tokens_then_restores_the_mean(
    sd15_clip: TextEncoders,
) -> None:
    plain = encode_prompt(sd15_clip, "a photo of a cat").first.embeds
    weighted = encode_prompt(sd15_clip, "a photo of a (cat:1.5)").first.embeds
    # Every token is scaled by one common factor (the mean rescale); `cat` (position 5) by 1.5 more.
    ratio = weighted / plain
    common = ratio[0, 0, 0]
    expected = torch.full_like(ratio, common.item())
    expected[0, 5] *= 1.5
    torch.testing.assert_close(ratio, expected, rtol=1e-5, atol=1e-5)
    assert common != 1.0
    torch.testing.assert_close(weighted.mean(), plain.mean(), rtol=1e-6, atol=1e-7)


def test_long_prompt_is_split_into_chunks_of_77(sd15_clip: TextEncoders) -> None:
    conditioning = encode_prompt(sd15_clip, "cat " * 100)
    assert conditioning.first.embeds.shape == (1, 154, 32)
    # No commas, so the cut falls after exactly 75 tokens and chunks are encoded independently.
    first = encode_prompt(sd15_clip, "cat " * 75).first.embeds
    second = encode_prompt(sd15_clip, "cat " * 25).first.embeds
    assert torch.equal(conditioning.first.embeds, torch.cat([first, second], dim=1))


def test_break_starts_a_new_chunk(sd15_clip: TextEncoders) -> None:
    conditioning = encode_prompt(sd15_clip, "a cat BREAK a dog")
    expected = torch.cat(
        [
            encode_prompt(sd15_clip, "a cat").first.embeds,
            encode_prompt(sd15_clip, "a dog").first.embeds,
        ],
        dim=1,
    )
    assert torch.equal(conditioning.first.embeds, expected)
    assert encode_prompt(sd15_clip, "BREAK a cat BREAK BREAK").first.embeds.shape == (1, 77, 32)


def test_sdxl_pooled_comes_from_the_first_chunk(sdxl_clip: TextEncoders) -> None:
    conditioning = encode_prompt(sdxl_clip, "a cat BREAK a dog")
    assert conditioning.first.embeds.shape == (1, 154, 80)
    assert torch.equal(conditioning.first.pooled, encode_prompt(sdxl_clip, "a cat").first.pooled)


def test_emphasis_leaves_the_pooled_embedding_alone(sdxl_clip: TextEncoders) -> None:
    # As in A1111: pooled is the projected EOS state straight from the model.
    plain = encode_prompt(sdxl_clip, "a photo of a cat")
    weighted = encode_prompt(sdxl_clip, "a photo of a (cat:1.5)")
    assert torch.equal(weighted.first.pooled, plain.first.pooled)
    assert not torch.equal(weighted.first.embeds, plain.first.embeds)


def test_runs_in_model_dtype_and_returns_float32(sd15_clip: TextEncoders) -> None:
    encoder = sd15_clip.encoders[0]
    half = dataclasses.replace(encoder, model=copy.deepcopy(encoder.model).to(torch.bfloat16))
    clip = dataclasses.replace(sd15_clip, encoders=(half,))
    conditioning = encode_prompt(clip, PROMPT)
    assert conditioning.first.embeds.dtype == torch.float32
    reference = encode_prompt(sd15_clip, PROMPT).first.embeds
    torch.testing.assert_close(conditioning.first.embeds, reference, rtol=0.1, atol=0.1)


@dataclass(frozen=True)
class ConstantPatch:
    target: str
    amount: float

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.full_like(weight, self.amount, dtype=torch.float32)


def test_encoder_patches_are_applied_during_encoding_only(sd15_clip: TextEncoders) -> None:
    encoder = sd15_clip.encoders[0]
    target = "encoder.layers.0.mlp.fc1.weight"
    before = encoder.model.state_dict()[target].clone()
    patched_clip = dataclasses.replace(
        sd15_clip, encoders=(dataclasses.replace(encoder, patches=(ConstantPatch(target, 0.05),)),)
    )
    baked = copy.deepcopy(encoder.model)
    with torch.no_grad():
        baked.get_parameter(target).add_(0.05)
    expected = diffusers_sd_embeds(encoder, PROMPT, model=baked)
    assert torch.equal(encode_prompt(patched_clip, PROMPT).first.embeds, expected)
    assert torch.equal(encoder.model.state_dict()[target], before)


def chunk(tokens: list[int], weight: float = 1.0) -> tuple[list[int], float]:
    return tokens, weight


COMMA = 267


def test_chunking_breaks_after_a_nearby_comma() -> None:
    # 70 words, a comma, then 10 more words: the chunk fills at 75, and the comma is 4 back.
    runs = [chunk([1] * 70 + [COMMA] + [2] * 10)]
    chunks = chunk_tokens(runs, comma_id=COMMA)
    assert [len(c.tokens) for c in chunks] == [71, 10]
    assert chunks[0].tokens[-1] == COMMA


def test_chunking_cuts_hard_when_the_comma_is_too_far_back() -> None:
    runs = [chunk([1] * 50 + [COMMA] + [2] * 40)]
    assert [len(c.tokens) for c in chunk_tokens(runs, comma_id=COMMA)] == [75, 16]


def test_chunking_keeps_weights_with_their_tokens() -> None:
    runs = [chunk([1] * 74, 1.0), chunk([2, 3], 1.5)]
    assert chunk_tokens(runs, comma_id=None) == [
        TokenChunk((1,) * 74 + (2,), (1.0,) * 74 + (1.5,)),
        TokenChunk((3,), (1.5,)),
    ]


def test_chunking_breaks_and_empty_input() -> None:
    assert chunk_tokens([], comma_id=COMMA) == [TokenChunk((), ())]
    runs = [Break(), chunk([1]), Break(), Break(), chunk([2]), Break()]
    assert chunk_tokens(runs, comma_id=COMMA) == [
        TokenChunk((1,), (1.0,)),
        TokenChunk((2,), (1.0,)),
    ]


@pytest.mark.parametrize("layer", ["last", "penultimate"])
def test_chunk_framing_uses_the_encoder_pad_id(sd15_clip: TextEncoders, layer: str) -> None:
    # Padding with `!` (0) instead of the end token changes the states after the end token only.
    encoder = dataclasses.replace(sd15_clip.encoders[0], layer=layer)
    by_end = encode_prompt(
        dataclasses.replace(sd15_clip, encoders=(encoder,)), "a cat"
    ).first.embeds
    zero_pad = dataclasses.replace(encoder, pad_token_id=0)
    by_zero = encode_prompt(
        dataclasses.replace(sd15_clip, encoders=(zero_pad,)), "a cat"
    ).first.embeds
    assert torch.equal(by_end[:, :4], by_zero[:, :4])
    assert not torch.equal(by_end[:, 4:], by_zero[:, 4:])


# --- weighting="comfy": ComfyUI's CLIPTextEncode -------------------------------------------


def test_comfy_weighting_moves_tokens_away_from_the_empty_prompt(sd15_clip: TextEncoders) -> None:
    plain = encode_prompt(sd15_clip, "a photo of a cat", "comfy").first.embeds
    empty = encode_prompt(sd15_clip, "", "comfy").first.embeds
    weighted = encode_prompt(sd15_clip, "a photo of a (cat:1.5)", "comfy").first.embeds
    # From the definition: z_empty + w (z - z_empty) at `cat` (position 5), nothing else moved
    # (A1111's weighting instead rescales every token to restore the mean).
    expected = plain.clone()
    expected[0, 5] = empty[0, 5] + 1.5 * (plain[0, 5] - empty[0, 5])
    torch.testing.assert_close(weighted, expected, rtol=0, atol=1e-6)
    assert torch.equal(weighted[0, :5], plain[0, :5]) and torch.equal(weighted[0, 6:], plain[0, 6:])
    a1111 = encode_prompt(sd15_clip, "a photo of a (cat:1.5)").first.embeds
    assert not torch.allclose(weighted, a1111, rtol=1e-3, atol=1e-3)


def test_plain_prompts_encode_alike_in_both_modes(sd15_clip: TextEncoders) -> None:
    comfy = encode_prompt(sd15_clip, PROMPT, "comfy").first.embeds
    assert torch.equal(comfy, encode_prompt(sd15_clip, PROMPT).first.embeds)
    assert torch.equal(comfy, diffusers_sd_embeds(sd15_clip.encoders[0], PROMPT))


def test_comfy_reads_square_brackets_and_break_as_text(sd15_clip: TextEncoders) -> None:
    comfy = encode_prompt(sd15_clip, "a [cat] BREAK a dog", "comfy").first.embeds
    assert comfy.shape == (1, 77, 32)
    assert not torch.equal(comfy, encode_prompt(sd15_clip, "a cat a dog", "comfy").first.embeds)
    assert encode_prompt(sd15_clip, "a [cat] BREAK a dog").first.embeds.shape == (1, 154, 32)


def test_comfy_chunking_moves_short_words_whole_and_cuts_long_ones() -> None:
    # A run shorter than 8 tokens that does not fit opens the next chunk (the full one is
    # padded); a run of 8 or more is cut at the chunk boundary. No comma backtracking.
    assert chunk_tokens_comfy([chunk([1] * 74), chunk([2, 3], 1.5)]) == [
        TokenChunk((1,) * 74, (1.0,) * 74),
        TokenChunk((2, 3), (1.5, 1.5)),
    ]
    assert chunk_tokens_comfy([chunk([1] * 70), chunk([2] * 8, 1.2)]) == [
        TokenChunk((1,) * 70 + (2,) * 5, (1.0,) * 70 + (1.2,) * 5),
        TokenChunk((2,) * 3, (1.2,) * 3),
    ]
    runs = [chunk([1] * 50 + [COMMA] + [2] * 40)]
    assert [len(c.tokens) for c in chunk_tokens_comfy(runs)] == [75, 16]
    assert chunk_tokens_comfy([]) == [TokenChunk((), ())]
    assert [len(c.tokens) for c in chunk_tokens_comfy([chunk([1] * 200)])] == [75, 75, 50]


def test_comfy_long_prompt_chunks_and_sdxl_pooled_from_the_first(
    sdxl_clip: TextEncoders,
) -> None:
    # 74 plain tokens, then a 2-token weighted word that does not fit: two chunks.
    prompt = "cat " * 74 + "(big dog:1.2)"
    conditioning = encode_prompt(sdxl_clip, prompt, "comfy")
    assert conditioning.first.embeds.shape == (1, 154, 80)
    first_chunk = encode_prompt(sdxl_clip, "cat " * 74, "comfy").first
    assert torch.equal(conditioning.first.embeds[:, :77], first_chunk.embeds)
    assert torch.equal(conditioning.first.pooled, first_chunk.pooled)


def test_unknown_weighting_is_refused(sd15_clip: TextEncoders) -> None:
    with pytest.raises(ValueError, match="unknown prompt weighting 'A1111'; expected one of: "):
        encode_prompt(sd15_clip, PROMPT, "A1111")  # type: ignore[arg-type]
