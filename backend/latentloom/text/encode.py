"""Turn a prompt into CONDITIONING with one or two CLIP text encoders.

The prompt is parsed into weighted runs (`prompt_syntax`), each run is tokenized without start
and end tokens, and the tokens are packed into chunks of 75. Each chunk is framed as
`start + tokens + end` and padded to 77 with the encoder's pad id, encoded on its own, and the
chunks' hidden states are concatenated along the token axis ([1, 77·k, dim]), the way A1111 and
ComfyUI lift CLIP's 77-token limit.

Chunk breaking follows A1111: when a chunk is full and a comma lies within its last
`COMMA_BACKTRACK` tokens, the tokens after that comma move to the next chunk, so a phrase is not
cut in half. `BREAK` closes the current chunk early; a `BREAK` with no tokens since the last
chunk boundary adds nothing, and an empty prompt still gives one (all padding) chunk.

Emphasis follows A1111's original method: every token's hidden state is multiplied by its
weight, then the whole chunk [77, dim] is rescaled so its mean equals the unweighted mean. A
chunk whose weights are all 1.0 is left untouched, so plain prompts match diffusers exactly.

SDXL's two encoders see the same chunks; their per-token states are concatenated along the
feature axis, and the pooled embedding is the second encoder's projected EOS state from the
first chunk (as diffusers and A1111 do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from latentloom.models.handles import ClipTextEncoder, Conditioning, TextEncoders
from latentloom.models.patching import applied
from latentloom.text.prompt_syntax import Break, Segment, WeightedText, parse_prompt

CHUNK_TOKENS = 75  # prompt tokens per chunk; start and end make CLIP's 77
COMMA_BACKTRACK = 20  # A1111's default `comma_padding_backtrack`


@dataclass(frozen=True)
class TokenChunk:
    """Up to 75 prompt token ids and their emphasis weights, before framing and padding."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class EncodedChunk:
    hidden: torch.Tensor  # [1, 77, dim] float32, emphasis applied
    pooled: torch.Tensor | None  # [1, projection_dim] when the model has a projection


class ChunkMismatchError(ValueError):
    """Two encoders of one model tokenized a prompt into different numbers of chunks."""

    def __init__(self, counts: Sequence[int]) -> None:
        super().__init__(
            f"the text encoders split the prompt into {list(counts)} chunks; they must agree "
            "(their tokenizers should share CLIP's vocabulary)"
        )
        self.counts = tuple(counts)


def encode_prompt(clip: TextEncoders, text: str) -> Conditioning:
    """Encode `text` (with emphasis and BREAK syntax) into a Conditioning."""
    if not clip.encoders:
        raise ValueError(f"CLIP from {clip.source} has no text encoders")
    segments = parse_prompt(text)
    per_encoder = [_encode_all_chunks(encoder, segments) for encoder in clip.encoders]
    counts = [len(chunks) for chunks in per_encoder]
    if len(set(counts)) != 1:
        raise ChunkMismatchError(counts)
    # Feature axis joins the encoders (SDXL: 768 + 1280); token axis joins the chunks.
    chunk_states = [
        torch.cat([chunks[index].hidden for chunks in per_encoder], dim=-1)
        for index in range(counts[0])
    ]
    embeds = torch.cat(chunk_states, dim=1)
    pooled = None
    if clip.family.name == "sdxl":
        pooled = per_encoder[-1][0].pooled
        if pooled is None:
            raise ValueError(
                f"SDXL CLIP from {clip.source}: the last text encoder has no projection, so "
                "there is no pooled embedding; it must be a CLIPTextModelWithProjection"
            )
    return Conditioning(embeds=embeds, pooled=pooled)


def _encode_all_chunks(encoder: ClipTextEncoder, segments: Sequence[Segment]) -> list[EncodedChunk]:
    chunks = chunk_tokens(tokenize_segments(encoder, segments), comma_id=_comma_id(encoder))
    with applied(encoder.model, encoder.patches), torch.no_grad():
        return [_encode_chunk(encoder, chunk) for chunk in chunks]


def tokenize_segments(
    encoder: ClipTextEncoder, segments: Sequence[Segment]
) -> list[tuple[list[int], float] | Break]:
    """Token ids (no start/end) for each weighted run; breaks pass through."""
    texts = [segment.text for segment in segments if isinstance(segment, WeightedText)]
    # verbose=False: runs longer than 77 tokens are expected here; chunking handles them.
    encoded = encoder.tokenizer(texts, add_special_tokens=False, verbose=False) if texts else None
    ids = iter(encoded["input_ids"] if encoded is not None else [])
    return [
        segment if isinstance(segment, Break) else (list(next(ids)), segment.weight)
        for segment in segments
    ]


def chunk_tokens(
    runs: Sequence[tuple[list[int], float] | Break],
    *,
    comma_id: int | None,
    chunk_length: int = CHUNK_TOKENS,
    comma_backtrack: int = COMMA_BACKTRACK,
) -> list[TokenChunk]:
    """Pack weighted token runs into chunks of at most `chunk_length` (A1111's algorithm)."""
    chunks: list[TokenChunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1  # index in `tokens` of the latest comma, -1 for none in this chunk

    def close(keep: int) -> None:
        nonlocal tokens, weights, last_comma
        chunks.append(TokenChunk(tuple(tokens[:keep]), tuple(weights[:keep])))
        tokens, weights, last_comma = tokens[keep:], weights[keep:], -1

    for run in runs:
        if isinstance(run, Break):
            if tokens:
                close(len(tokens))
            continue
        run_tokens, weight = run
        for token in run_tokens:
            full = len(tokens) == chunk_length
            if token == comma_id:
                last_comma = len(tokens)
            elif full and last_comma != -1 and len(tokens) - last_comma <= comma_backtrack:
                close(last_comma + 1)  # the words after the comma open the next chunk
            if len(tokens) == chunk_length:
                close(len(tokens))
            tokens.append(token)
            weights.append(weight)
    if tokens or not chunks:
        close(len(tokens))
    return chunks


def _comma_id(encoder: ClipTextEncoder) -> int | None:
    token_id = encoder.tokenizer.convert_tokens_to_ids(",</w>")
    if isinstance(token_id, int) and token_id != encoder.tokenizer.unk_token_id:
        return token_id
    return None


def _encode_chunk(encoder: ClipTextEncoder, chunk: TokenChunk) -> EncodedChunk:
    tokenizer, model = encoder.tokenizer, encoder.model
    padding = CHUNK_TOKENS - len(chunk.tokens)
    ids = [
        tokenizer.bos_token_id,
        *chunk.tokens,
        tokenizer.eos_token_id,
        *[encoder.pad_token_id] * padding,
    ]
    weights = [1.0, *chunk.weights, *[1.0] * (padding + 1)]
    input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
    output = model(input_ids=input_ids, output_hidden_states=True)
    hidden = _select_layer(encoder, output).to(torch.float32)
    pooled = getattr(output, "text_embeds", None)
    return EncodedChunk(
        hidden=_apply_emphasis(hidden, weights),
        pooled=None if pooled is None else pooled.to(torch.float32),
    )


def _select_layer(encoder: ClipTextEncoder, output: object) -> torch.Tensor:
    if encoder.layer == "last":
        # CLIPTextModel's last_hidden_state already went through the final layer norm.
        return output.last_hidden_state  # type: ignore[attr-defined,no-any-return]
    penultimate = output.hidden_states[-2]  # type: ignore[attr-defined]
    if encoder.final_norm_on_penultimate:
        return _final_layer_norm(encoder.model)(penultimate)  # type: ignore[no-any-return]
    return penultimate  # type: ignore[no-any-return]


def _final_layer_norm(model: torch.nn.Module) -> torch.nn.Module:
    """transformers 5's CLIPTextModel *is* the text transformer; the projection model wraps one."""
    text_model = getattr(model, "text_model", model)
    norm = getattr(text_model, "final_layer_norm", None)
    if not isinstance(norm, torch.nn.Module):
        raise TypeError(f"{type(model).__name__} has no final_layer_norm to apply")
    return norm


def _apply_emphasis(hidden: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """A1111's original emphasis: scale each token's state, then restore the chunk's mean."""
    if all(weight == 1.0 for weight in weights):
        return hidden
    multipliers = torch.tensor(weights, dtype=hidden.dtype, device=hidden.device)
    original_mean = hidden.mean()
    weighted = hidden * multipliers[None, :, None]
    return weighted * (original_mean / weighted.mean())
