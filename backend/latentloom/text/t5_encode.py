"""Prompt encoding for SD 3 / 3.5 and FLUX.1: CLIP towers beside the T5 encoder.

SD 3 (diffusers' `StableDiffusion3Pipeline.encode_prompt`, ComfyUI's SD3ClipModel): CLIP-L and
CLIP-G read the prompt in 77-token chunks (`encode.py`, penultimate hidden state, no final
norm); their states are joined on the feature axis (768 + 1280), zero-padded to T5's width
(4096), and T5's states follow on the token axis. The pooled vector is CLIP-L's and CLIP-G's
projected end-token states side by side (768 + 1280 = 2048).

FLUX.1 (`FluxPipeline.encode_prompt`, ComfyUI's FluxClipModel): the context is T5's last hidden
state alone; the pooled vector is CLIP-L's unprojected end-token state (768).

T5 gets the prompt whole: its tokens, `</s>`, then `<pad>` up to the encoder's `min_length`
(77 for SD 3, 256 for FLUX, as ComfyUI pads; diffusers pads to `max_sequence_length`, so the
two agree when that equals min_length and the prompt fits). Emphasis weights T5's token states
the way the chosen weighting weights CLIP's (`encode.py`); textual-inversion embeddings are
CLIP vectors and are dropped from T5's text.

Any encoder may be missing, as users load them: ComfyUI's rules apply. SD 3 without CLIP-L
uses zeros for its 768 features and its pooled part, without CLIP-G zeros for G's, without T5
the CLIP states alone (77·k tokens); with nothing at all, zeros [1, 77, 4096] and a zero
pooled vector. FLUX without CLIP-L pools zeros; without T5 it has no context and is refused.
A text of None leaves that encoder out for this prompt (CLIPTextEncodeSD3's empty_padding
"none"); if only one CLIP tower is left out it reads the empty prompt instead, as in ComfyUI.
Which CLIP tower is which: OpenCLIP's bigG pads with id 0, CLIP-L with its end token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from latentloom.models.handles import ClipTextEncoder, Conditioning, T5TextEncoder, TextEncoders
from latentloom.models.patching import applied
from latentloom.text.embeddings import EmbeddingFolders, EmbeddingName, split_references
from latentloom.text.encode import (
    EncodedChunk,
    Weighting,
    _apply_emphasis,
    _comfy_emphasis,
    clip_encoders,
    encode_clip_text,
    vector_tables,
)
from latentloom.text.prompt_syntax import Break, parse_prompt, parse_prompt_comfy
from latentloom.text.t5_tokenizer import END_ID, PAD_ID

SD3_CONTEXT_WIDTH = 4096  # T5-XXL's width, which SD 3's context has without a T5 to ask
CLIP_L_WIDTH, CLIP_G_WIDTH = 768, 1280
CLIP_TOKENS = 77


@dataclass(frozen=True)
class FamilyEncoders:
    """The encoders of an SD 3 / FLUX CLIP handle by role; None where the handle has none."""

    clip_l: ClipTextEncoder | None
    clip_g: ClipTextEncoder | None
    t5: T5TextEncoder | None


def family_encoders(clip: TextEncoders) -> FamilyEncoders:
    towers = clip_encoders(clip)
    t5s = [encoder for encoder in clip.encoders if isinstance(encoder, T5TextEncoder)]
    big_g = [tower for tower in towers if tower.pad_token_id == 0]
    clip_l = [tower for tower in towers if tower.pad_token_id != 0]
    if len(towers) > 2 or len(t5s) > 1 or len(big_g) > 1 or len(clip_l) > 1:
        raise ValueError(
            f"{clip.family.display_name} CLIP from {clip.source} holds {len(clip_l)} CLIP-L, "
            f"{len(big_g)} CLIP-G and {len(t5s)} T5 encoders; it takes at most one of each"
        )
    return FamilyEncoders(
        clip_l=clip_l[0] if clip_l else None,
        clip_g=big_g[0] if big_g else None,
        t5=t5s[0] if t5s else None,
    )


def encode_family_prompt(
    clip: TextEncoders,
    text: str,
    weighting: Weighting = "a1111",
    *,
    embeddings: EmbeddingFolders | None = None,
) -> Conditioning:
    """The plain Encode Prompt for SD 3 / FLUX: every encoder reads the same text."""
    if clip.family.name == "flux":
        return encode_flux(
            clip, clip_l=text, t5xxl=text, weighting=weighting, embeddings=embeddings
        )
    return encode_sd3(
        clip, clip_l=text, clip_g=text, t5xxl=text, weighting=weighting, embeddings=embeddings
    )


def _clip_chunks(
    clip: TextEncoders,
    texts: Sequence[tuple[ClipTextEncoder, str]],
    weighting: Weighting,
    embeddings: EmbeddingFolders | None,
) -> list[list[EncodedChunk]]:
    encoders = [encoder for encoder, _ in texts]
    tables = vector_tables(encoders, clip, embeddings)
    return [
        encode_clip_text(encoder, text, weighting, table)
        for (encoder, text), table in zip(texts, tables, strict=True)
    ]


def _pooled(chunks: list[EncodedChunk]) -> torch.Tensor:
    first = chunks[0]
    return first.pooled if first.pooled is not None else _unprojected(chunks)


def _unprojected(chunks: list[EncodedChunk]) -> torch.Tensor:
    if chunks[0].pooler is None:  # encode.py always sets it; kept for the type checker
        raise ValueError("the CLIP tower gave no pooled output")
    return chunks[0].pooler


def _tokens(chunks: list[EncodedChunk]) -> torch.Tensor:
    return torch.cat([chunk.hidden for chunk in chunks], dim=1)


def encode_sd3(
    clip: TextEncoders,
    *,
    clip_l: str | None,
    clip_g: str | None,
    t5xxl: str | None,
    weighting: Weighting = "a1111",
    embeddings: EmbeddingFolders | None = None,
) -> Conditioning:
    """SD 3's conditioning; see the module docstring for missing encoders and None texts."""
    found = family_encoders(clip)
    if clip_l is None and clip_g is not None:
        clip_l = ""
    if clip_g is None and clip_l is not None:
        clip_g = ""
    width = SD3_CONTEXT_WIDTH if found.t5 is None else int(found.t5.model.config.d_model)
    towers = [
        (encoder, text)
        for encoder, text in ((found.clip_l, clip_l), (found.clip_g, clip_g))
        if encoder is not None and text is not None
    ]
    states, pooled = None, None
    if towers:
        per_tower = dict(
            zip(
                [e for e, _ in towers],
                _clip_chunks(clip, towers, weighting, embeddings),
                strict=True,
            )
        )
        states, pooled = _join_clip(found, per_tower, width)
    if found.t5 is not None and t5xxl is not None:
        t5_states = encode_t5(found.t5, t5xxl, weighting)
        states = t5_states if states is None else torch.cat([states, t5_states], dim=1)
    if states is None:
        states = torch.zeros(1, CLIP_TOKENS, width)
    if pooled is None:
        pooled = torch.zeros(1, CLIP_L_WIDTH + CLIP_G_WIDTH)
    return Conditioning.of(states, pooled)


def _join_clip(
    found: FamilyEncoders, per_tower: dict[ClipTextEncoder, list[EncodedChunk]], width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP-L and CLIP-G states side by side, zero-padded to `width`, and their pooled pair."""
    l_chunks = per_tower.get(found.clip_l) if found.clip_l is not None else None
    g_chunks = per_tower.get(found.clip_g) if found.clip_g is not None else None
    if l_chunks is not None and g_chunks is not None:
        count = min(len(l_chunks), len(g_chunks))  # ComfyUI cuts to the shorter
        states = torch.cat([_tokens(l_chunks[:count]), _tokens(g_chunks[:count])], dim=-1)
    elif l_chunks is not None:
        states = _tokens(l_chunks)
    else:
        assert g_chunks is not None  # _join_clip is called with at least one tower
        states = F.pad(_tokens(g_chunks), (CLIP_L_WIDTH, 0))
    if states.shape[-1] > width:
        raise ValueError(
            f"SD 3 CLIP states are {states.shape[-1]} wide but the T5 encoder is {width}; "
            "the CLIP-L and CLIP-G files do not belong with this T5 file"
        )
    pooled_l = _pooled(l_chunks) if l_chunks is not None else torch.zeros(1, CLIP_L_WIDTH)
    pooled_g = _pooled(g_chunks) if g_chunks is not None else torch.zeros(1, CLIP_G_WIDTH)
    return F.pad(states, (0, width - states.shape[-1])), torch.cat([pooled_l, pooled_g], dim=-1)


def encode_flux(
    clip: TextEncoders,
    *,
    clip_l: str,
    t5xxl: str,
    guidance: float | None = None,
    weighting: Weighting = "a1111",
    embeddings: EmbeddingFolders | None = None,
) -> Conditioning:
    """FLUX's conditioning: T5 context, CLIP-L pooled; `guidance` for FLUX dev's embedder."""
    found = family_encoders(clip)
    if found.t5 is None:
        raise ValueError(
            f"FLUX CLIP from {clip.source} has no T5 encoder, and FLUX reads its prompt through "
            "T5; load CLIP-L and T5-XXL together with Dual CLIP Loader (type flux)"
        )
    context = encode_t5(found.t5, t5xxl, weighting)
    if found.clip_l is None:
        pooled = torch.zeros(1, CLIP_L_WIDTH)
    else:
        (chunks,) = _clip_chunks(clip, [(found.clip_l, clip_l)], weighting, embeddings)
        pooled = _unprojected(chunks)
    conditioning = Conditioning.of(context, pooled)
    if guidance is None:
        return conditioning
    return Conditioning(
        tuple(dataclasses.replace(entry, guidance=guidance) for entry in conditioning.entries)
    )


def _t5_runs(text: str, weighting: Weighting) -> list[tuple[str, float]]:
    """The prompt's weighted runs as plain text; embedding references are CLIP's, dropped."""
    segments = parse_prompt_comfy(text) if weighting == "comfy" else parse_prompt(text)
    runs: list[tuple[str, float]] = []
    for segment in segments:
        if isinstance(segment, Break):
            continue
        for piece in split_references(segment.text):
            if not isinstance(piece, EmbeddingName) and piece:
                runs.append((piece, segment.weight))
    return runs


def encode_t5(encoder: T5TextEncoder, text: str, weighting: Weighting = "a1111") -> torch.Tensor:
    """T5's last hidden state [1, max(min_length, tokens + 1), d_model] in float32."""
    runs = _t5_runs(text, weighting)
    encoded = (
        encoder.tokenizer([run for run, _ in runs], add_special_tokens=False) if runs else None
    )
    ids: list[int] = []
    weights: list[float] = []
    for run_ids, (_, weight) in zip(encoded["input_ids"] if encoded else [], runs, strict=True):
        ids += run_ids
        weights += [weight] * len(run_ids)
    length = max(encoder.min_length, len(ids) + 1)
    padding = length - len(ids) - 1
    weights += [1.0] * (padding + 1)
    with applied(encoder.model, encoder.patches), torch.no_grad():
        hidden = _run_t5(encoder, [*ids, END_ID, *[PAD_ID] * padding])
        if all(weight == 1.0 for weight in weights):
            return hidden
        if weighting == "a1111":
            return _apply_emphasis(hidden, weights)
        empty = _run_t5(encoder, [END_ID, *[PAD_ID] * (length - 1)])
    return _comfy_emphasis(hidden, empty, weights)


def _run_t5(encoder: T5TextEncoder, ids: list[int]) -> torch.Tensor:
    model = encoder.model
    input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
    return model(input_ids=input_ids).last_hidden_state.to(torch.float32)  # type: ignore[no-any-return]
