"""Two prompts for SDXL's two text encoders (ComfyUI's CLIPTextEncodeSDXL).

`text_l` goes to CLIP-L and `text_g` to OpenCLIP bigG; each tower cuts its own prompt into
77-token chunks (`encode.encode_clip_text`, either weighting). When one prompt needs fewer
chunks than the other, it is followed by chunks of the empty prompt until both have as many,
as ComfyUI pads the shorter token list with the empty prompt's tokens; then the two line up
token for token and are joined on the feature axis (768 + 1280), and the pooled embedding is
bigG's from its first chunk, exactly as for one prompt (`encode.encode_prompt`). With the same
text on both sides the result is `encode_prompt`'s.
"""

from __future__ import annotations

import torch

from latentloom.models.handles import ClipTextEncoder, Conditioning, TextEncoders
from latentloom.text.embeddings import EmbeddingFolders, VectorTable
from latentloom.text.encode import (
    EncodedChunk,
    Weighting,
    clip_encoders,
    encode_clip_text,
    vector_tables,
)


class NotSdxlBaseClipError(ValueError):
    """Separate CLIP-L / bigG prompts need the SDXL base's two encoders."""

    def __init__(self, clip: TextEncoders) -> None:
        towers = len(clip_encoders(clip))
        found = (
            "an SDXL refiner's CLIP (OpenCLIP bigG alone)"
            if clip.family.name == "sdxl" and towers == 1
            else f"{clip.family.display_name} CLIP with {towers} text encoder(s)"
        )
        super().__init__(
            f"text_g and text_l need the SDXL base's two text encoders (CLIP-L and OpenCLIP "
            f"bigG), but {clip.source} is {found}; connect an SDXL base checkpoint's CLIP, or "
            "use Encode Prompt (SDXL Refiner) / Encode Prompt for this one"
        )


def encode_prompt_pair(
    clip: TextEncoders,
    text_g: str,
    text_l: str,
    weighting: Weighting = "a1111",
    *,
    embeddings: EmbeddingFolders | None = None,
) -> Conditioning:
    """`text_l` through CLIP-L and `text_g` through bigG, as one SDXL conditioning entry."""
    encoders = clip_encoders(clip)
    if clip.family.name != "sdxl" or len(encoders) != 2:
        raise NotSdxlBaseClipError(clip)
    tables = vector_tables(encoders, clip, embeddings)
    per_encoder = [
        encode_clip_text(encoder, text, weighting, table)
        for encoder, text, table in zip(encoders, (text_l, text_g), tables, strict=True)
    ]
    longest = max(len(chunks) for chunks in per_encoder)
    padded = [
        chunks + [_empty_chunk(encoder, weighting, table)] * (longest - len(chunks))
        if len(chunks) < longest
        else chunks
        for encoder, table, chunks in zip(encoders, tables, per_encoder, strict=True)
    ]
    embeds = torch.cat(
        [torch.cat([chunks[i].hidden for chunks in padded], dim=-1) for i in range(longest)], dim=1
    )
    pooled = per_encoder[1][0].pooled
    if pooled is None:
        raise NotSdxlBaseClipError(clip)
    return Conditioning.of(embeds, pooled)


def _empty_chunk(
    encoder: ClipTextEncoder, weighting: Weighting, table: VectorTable
) -> EncodedChunk:
    """The empty prompt's one chunk (start, end, padding), which pads the shorter prompt."""
    return encode_clip_text(encoder, "", weighting, table)[0]
