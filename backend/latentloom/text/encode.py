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

Textual-inversion embeddings (`embedding:name`, see `embeddings.py`) become runs of their own
whose token ids are negative placeholders for the file's vectors; A1111's chunking moves a whole
embedding to the next chunk rather than cutting it (ComfyUI's treats it as one word). At
encode time the placeholders' rows of the token embedding are replaced by the vectors through a
forward hook, so the rest of CLIP's forward pass is transformers' own.

Clip skip (`ClipTextEncoder.stop_at_layer`, set by CLIP Set Last Layer) reads hidden state
-k of the tower as ComfyUI counts it (-1 the last layer); SD 1.x and SD 2.x then apply the final
layer norm as ComfyUI and A1111 do, SDXL's towers never do.

`weighting="comfy"` reproduces ComfyUI's CLIPTextEncode instead: its prompt syntax
(`parse_prompt_comfy`), its chunking (each weighted run is a "word"; a word shorter than 8
tokens that does not fit moves whole to the next chunk, which is padded, and a longer one is
cut at the chunk boundary; no comma backtracking, no BREAK), and its emphasis: a token of
weight w becomes z_empty + w * (z - z_empty), where z_empty is the same position's state in
the encoding of the empty prompt, with no mean restoration. Tokens of weight 1 are untouched
in both modes, so a plain short prompt encodes identically either way.

SD 3 and FLUX (CLIP towers beside T5) are encoded in `t5_encode.py`, which reuses this
module's CLIP chunks through `encode_clip_text`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

from latentloom.models.handles import ClipTextEncoder, Conditioning, TextEncoders
from latentloom.models.patching import applied
from latentloom.text.embeddings import (
    EmbeddingFolders,
    EmbeddingName,
    VectorTable,
    embedding_loaders,
    is_vector,
    split_references,
)
from latentloom.text.prompt_syntax import (
    Break,
    Segment,
    WeightedText,
    parse_prompt,
    parse_prompt_comfy,
)

CHUNK_TOKENS = 75  # prompt tokens per chunk; start and end make CLIP's 77
COMMA_BACKTRACK = 20  # A1111's default `comma_padding_backtrack`
COMFY_WORD_TOKENS = 8  # ComfyUI cuts a run across chunks only from this many tokens on
Weighting = Literal["a1111", "comfy"]
WEIGHTINGS: tuple[Weighting, ...] = ("a1111", "comfy")


@dataclass(frozen=True)
class TokenChunk:
    """Up to 75 prompt token ids and their emphasis weights, before framing and padding."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class EncodedChunk:
    hidden: torch.Tensor  # [1, 77, dim] float32, emphasis applied
    pooled: torch.Tensor | None  # [1, projection_dim] when the model has a projection
    # [1, dim]: the final-normed end-token state before any projection (transformers'
    # `pooler_output`), which FLUX pools, and SD 3 where a CLIP file has no projection.
    pooler: torch.Tensor | None = None


class ChunkMismatchError(ValueError):
    """Two encoders of one model tokenized a prompt into different numbers of chunks."""

    def __init__(self, counts: Sequence[int]) -> None:
        super().__init__(
            f"the text encoders split the prompt into {list(counts)} chunks; they must agree "
            "(their tokenizers should share CLIP's vocabulary)"
        )
        self.counts = tuple(counts)


def encode_prompt(
    clip: TextEncoders,
    text: str,
    weighting: Weighting = "a1111",
    *,
    embeddings: EmbeddingFolders | None = None,
) -> Conditioning:
    """Encode `text` (with emphasis syntax) into a Conditioning, A1111's way or ComfyUI's.

    `embeddings` is where `embedding:name` files are found (the engine's folders); without
    it a prompt that names one is refused.
    """
    if not clip.encoders:
        raise ValueError(f"CLIP from {clip.source} has no text encoders")
    if weighting not in WEIGHTINGS:
        raise ValueError(
            f"unknown prompt weighting {weighting!r}; expected one of: {', '.join(WEIGHTINGS)}"
        )
    if clip.family.name in ("sd3", "flux"):
        from latentloom.text.t5_encode import encode_family_prompt

        return encode_family_prompt(clip, text, weighting, embeddings=embeddings)
    encoders = clip_encoders(clip)
    tables = vector_tables(encoders, clip, embeddings)
    per_encoder = [
        encode_clip_text(encoder, text, weighting, table)
        for encoder, table in zip(encoders, tables, strict=True)
    ]
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
    return Conditioning.of(embeds, pooled)


def clip_encoders(clip: TextEncoders) -> list[ClipTextEncoder]:
    """The CLIP towers of `clip`, in order (T5 encoders left out)."""
    return [encoder for encoder in clip.encoders if isinstance(encoder, ClipTextEncoder)]


def vector_tables(
    encoders: Sequence[ClipTextEncoder], clip: TextEncoders, embeddings: EmbeddingFolders | None
) -> list[VectorTable]:
    """One table of textual-inversion vectors per CLIP tower (see `embeddings.py`)."""
    widths = [int(encoder.model.config.hidden_size) for encoder in encoders]
    loaders = embedding_loaders(embeddings, widths, clip.family.display_name)
    return [VectorTable(load) for load in loaders]


def encode_clip_text(
    encoder: ClipTextEncoder, text: str, weighting: Weighting, table: VectorTable
) -> list[EncodedChunk]:
    """One CLIP tower's 77-token chunks of `text`, A1111's way or ComfyUI's."""
    if weighting == "comfy":
        return _encode_comfy(encoder, parse_prompt_comfy(text), table)
    return _encode_all_chunks(encoder, parse_prompt(text), table)


def _encode_all_chunks(
    encoder: ClipTextEncoder, segments: Sequence[Segment], table: VectorTable
) -> list[EncodedChunk]:
    runs = tokenize_segments(encoder, segments, table)
    chunks = chunk_tokens(runs, comma_id=_comma_id(encoder))
    with applied(encoder.model, encoder.patches), torch.no_grad():
        return [_encode_chunk(encoder, chunk, table=table) for chunk in chunks]


def _encode_comfy(
    encoder: ClipTextEncoder, runs: Sequence[WeightedText], table: VectorTable
) -> list[EncodedChunk]:
    """ComfyUI's chunking and z_empty + w (z - z_empty) emphasis for one encoder."""
    tokenized = [
        run for run in tokenize_segments(encoder, runs, table) if not isinstance(run, Break)
    ]
    chunks = chunk_tokens_comfy(tokenized)
    with applied(encoder.model, encoder.patches), torch.no_grad():
        encoded = [_encode_chunk(encoder, chunk, emphasis=False, table=table) for chunk in chunks]
        if all(weight == 1.0 for chunk in chunks for weight in chunk.weights):
            return encoded
        empty = _encode_chunk(encoder, TokenChunk((), ()), emphasis=False).hidden
    return [
        dataclasses.replace(item, hidden=_comfy_emphasis(item.hidden, empty, _frame_weights(chunk)))
        for item, chunk in zip(encoded, chunks, strict=True)
    ]


def _comfy_emphasis(
    hidden: torch.Tensor, empty: torch.Tensor, weights: Sequence[float]
) -> torch.Tensor:
    """Move each weighted token's state away from the empty prompt's by its weight."""
    multipliers = torch.tensor(weights, dtype=hidden.dtype, device=hidden.device)[None, :, None]
    weighted = (hidden - empty) * multipliers + empty
    return torch.where(multipliers != 1.0, weighted, hidden)


def tokenize_segments(
    encoder: ClipTextEncoder, segments: Sequence[Segment], table: VectorTable | None = None
) -> list[tuple[list[int], float] | Break]:
    """Token ids (no start/end) for each weighted run; breaks pass through.

    A run that names embeddings is cut around them: each `embedding:name` becomes a run of its
    own, of the run's weight, whose ids are `table`'s placeholders for the file's vectors.
    """
    pieces: list[tuple[str | EmbeddingName, float] | Break] = []
    for segment in segments:
        if isinstance(segment, Break):
            pieces.append(segment)
            continue
        split = split_references(segment.text)
        kept = split if len(split) == 1 else [piece for piece in split if piece != ""]
        pieces.extend((piece, segment.weight) for piece in kept)
    texts = [p[0] for p in pieces if not isinstance(p, Break) and isinstance(p[0], str)]
    # verbose=False: runs longer than 77 tokens are expected here; chunking handles them.
    encoded = encoder.tokenizer(texts, add_special_tokens=False, verbose=False) if texts else None
    ids = iter(encoded["input_ids"] if encoded is not None else [])
    runs: list[tuple[list[int], float] | Break] = []
    for piece in pieces:
        if isinstance(piece, Break):
            runs.append(piece)
        elif isinstance(piece[0], EmbeddingName):
            runs.append(((table or VectorTable()).ids(piece[0].name), piece[1]))
        else:
            runs.append((list(next(ids)), piece[1]))
    return runs


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
        # A1111 moves an embedding that would cross the chunk boundary whole to the next chunk.
        embedding = bool(run_tokens) and all(is_vector(token) for token in run_tokens)
        if embedding and tokens and len(tokens) + len(run_tokens) > chunk_length:
            close(len(tokens))
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


def chunk_tokens_comfy(
    runs: Sequence[tuple[list[int], float]],
    *,
    chunk_length: int = CHUNK_TOKENS,
    word_tokens: int = COMFY_WORD_TOKENS,
) -> list[TokenChunk]:
    """Pack weighted token runs into chunks of at most `chunk_length` (ComfyUI's algorithm)."""
    chunks: list[TokenChunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    for run_tokens, weight in runs:
        pending = list(run_tokens)
        splittable = len(pending) >= word_tokens
        while pending:
            room = chunk_length - len(tokens)
            taken = pending if len(pending) <= room else pending[:room] if splittable else []
            tokens += taken
            weights += [weight] * len(taken)
            pending = pending[len(taken) :]
            if pending:  # the chunk is full, or the next word does not fit: close it
                chunks.append(TokenChunk(tuple(tokens), tuple(weights)))
                tokens, weights = [], []
    chunks.append(TokenChunk(tuple(tokens), tuple(weights)))
    return chunks


def _comma_id(encoder: ClipTextEncoder) -> int | None:
    token_id = encoder.tokenizer.convert_tokens_to_ids(",</w>")
    if isinstance(token_id, int) and token_id != encoder.tokenizer.unk_token_id:
        return token_id
    return None


def _frame_weights(chunk: TokenChunk) -> list[float]:
    """The chunk's weights at the 77 positions of start + tokens + end + padding."""
    return [1.0, *chunk.weights, *[1.0] * (CHUNK_TOKENS - len(chunk.tokens) + 1)]


def _encode_chunk(
    encoder: ClipTextEncoder,
    chunk: TokenChunk,
    *,
    emphasis: bool = True,
    table: VectorTable | None = None,
) -> EncodedChunk:
    tokenizer, model = encoder.tokenizer, encoder.model
    padding = CHUNK_TOKENS - len(chunk.tokens)
    ids = [
        tokenizer.bos_token_id,
        *chunk.tokens,
        tokenizer.eos_token_id,
        *[encoder.pad_token_id] * padding,
    ]
    table = table or VectorTable()
    vectors = {position: table.vector(token) for position, token in enumerate(ids) if token < 0}
    # Any real id will do under a vector (its row is replaced), except the end token, whose
    # first position CLIP's pooled output is read from: 0 ("!").
    ids = [0 if token < 0 else token for token in ids]
    input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
    with _vectors_in_place(model, vectors):
        output = model(input_ids=input_ids, output_hidden_states=True)
    hidden = _select_layer(encoder, output).to(torch.float32)
    pooled = getattr(output, "text_embeds", None)
    pooler = getattr(output, "pooler_output", None)
    if pooler is None:  # the projection model: its pooled state is the end token's, unprojected
        pooler = output.last_hidden_state[:, ids.index(tokenizer.eos_token_id)]
    return EncodedChunk(
        hidden=_apply_emphasis(hidden, _frame_weights(chunk)) if emphasis else hidden,
        pooled=None if pooled is None else pooled.to(torch.float32),
        pooler=pooler.to(torch.float32),
    )


@contextmanager
def _vectors_in_place(model: torch.nn.Module, vectors: dict[int, torch.Tensor]) -> Iterator[None]:
    """Replace the token embedding's output rows at `vectors`' positions during the block.

    The hook is registered on the shared module; callers hold its lock (`applied`)."""
    if not vectors:
        yield
        return
    positions = list(vectors)
    rows = torch.stack([vectors[position] for position in positions])

    def replace(module: torch.nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, positions] = rows.to(device=output.device, dtype=output.dtype)
        return output

    embedding: torch.nn.Module = model.get_input_embeddings()  # type: ignore[operator]
    handle = embedding.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _select_layer(encoder: ClipTextEncoder, output: object) -> torch.Tensor:
    if encoder.stop_at_layer is not None:
        hidden = output.hidden_states[encoder.stop_at_layer]  # type: ignore[attr-defined]
        if normalises_intermediate(encoder):
            return _final_layer_norm(encoder.model)(hidden)  # type: ignore[no-any-return]
        return hidden  # type: ignore[no-any-return]
    if encoder.layer == "last":
        # CLIPTextModel's last_hidden_state already went through the final layer norm.
        return output.last_hidden_state  # type: ignore[attr-defined,no-any-return]
    penultimate = output.hidden_states[-2]  # type: ignore[attr-defined]
    if encoder.final_norm_on_penultimate:
        return _final_layer_norm(encoder.model)(penultimate)  # type: ignore[no-any-return]
    return penultimate  # type: ignore[no-any-return]


def normalises_intermediate(encoder: ClipTextEncoder) -> bool:
    """Whether a layer before the last gets the final layer norm (ComfyUI's
    `layer_norm_hidden_state`): SD 1.x's towers (read at the last, normalised layer by
    default) and SD 2.x's (`final_norm_on_penultimate`) do; SDXL's do not."""
    return encoder.layer == "last" or encoder.final_norm_on_penultimate


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
