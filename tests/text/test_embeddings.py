"""Textual-inversion embeddings change the encoding exactly at their positions: the oracle is
the same vectors put into CLIP by hand, as new rows of a copy's token embedding (the way
diffusers loads a textual inversion), fed through transformers' own forward pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.folders import ModelFolders
from latentloom.models.handles import ClipTextEncoder, TextEncoders
from latentloom.models.safetensors_write import save_tensors
from latentloom.text.embeddings import EmbeddingError, EmbeddingNotFoundError, split_references
from latentloom.text.encode import encode_prompt

VOCAB = 49_408


def vectors(count: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    root = tmp_path_factory.mktemp("embeddings-root")
    folder = root / "embeddings"
    (folder / "styles").mkdir(parents=True)
    save_tensors(folder / "two.safetensors", {"emb_params": vectors(2, 32, 0)})
    save_tensors(folder / "styles" / "A1111.safetensors", {"string_to_param.*": vectors(2, 32, 0)})
    save_tensors(folder / "wide.safetensors", {"emb_params": vectors(1, 768, 1)})
    save_tensors(
        folder / "xl.safetensors", {"clip_l": vectors(3, 32, 2), "clip_g": vectors(3, 48, 3)}
    )
    save_tensors(folder / "long.safetensors", {"emb_params": vectors(10, 32, 4)})
    return ModelFolders.of([root])


def by_hand(
    encoder: ClipTextEncoder, pieces: list[str | torch.Tensor], *, layer: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hidden state and pooled output with `pieces`' vectors as new vocabulary rows."""
    model = copy.deepcopy(encoder.model)
    ids: list[int] = [encoder.tokenizer.bos_token_id]
    rows: list[torch.Tensor] = []
    for piece in pieces:
        if isinstance(piece, str):
            ids += encoder.tokenizer(piece, add_special_tokens=False)["input_ids"]
        else:
            ids += [VOCAB + len(rows) + index for index in range(len(piece))]
            rows += list(piece)
    ids += [encoder.tokenizer.eos_token_id] + [encoder.pad_token_id] * (77 - len(ids) - 1)
    model.resize_token_embeddings(VOCAB + len(rows))
    with torch.no_grad():
        table: Any = model.get_input_embeddings()
        table.weight[VOCAB:] = torch.stack(rows)
        output = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    hidden = output.last_hidden_state if layer is None else output.hidden_states[layer]
    return hidden, getattr(output, "text_embeds", None)


def test_references_are_found_where_comfyui_finds_them() -> None:
    names = [
        piece.name
        for piece in split_references("embedding:a, (embedding:b:1.2) x,embedding:c.safetensors")
        if not isinstance(piece, str)
    ]
    assert names == ["a", "b", "c.safetensors"]
    assert split_references("noembedding:a") == ["noembedding:a"]


def test_sd15_vectors_replace_the_tokens_at_their_positions(
    sd15_clip: TextEncoders, folders: ModelFolders
) -> None:
    embeds = encode_prompt(sd15_clip, "a photo of embedding:two cat", embeddings=folders)
    expected, _ = by_hand(sd15_clip.encoders[0], ["a photo of", vectors(2, 32, 0), "cat"])
    assert torch.equal(embeds.first.embeds, expected)
    plain = encode_prompt(sd15_clip, "a photo of cat").first.embeds
    assert not torch.allclose(embeds.first.embeds[:, 4:6], plain[:, 4:6])


@pytest.mark.parametrize("name", ["two.safetensors", "styles/A1111"])
def test_the_extension_is_optional_and_a1111_files_read_the_same(
    sd15_clip: TextEncoders, folders: ModelFolders, name: str
) -> None:
    reference = encode_prompt(sd15_clip, "a photo of embedding:two cat", embeddings=folders)
    other = encode_prompt(sd15_clip, f"a photo of embedding:{name} cat", embeddings=folders)
    assert torch.equal(other.first.embeds, reference.first.embeds)


def test_an_embedding_is_weighted_like_a_word(
    sd15_clip: TextEncoders, folders: ModelFolders
) -> None:
    weighted = encode_prompt(sd15_clip, "a photo of (embedding:two:1.5) cat", embeddings=folders)
    hidden, _ = by_hand(sd15_clip.encoders[0], ["a photo of", vectors(2, 32, 0), "cat"])
    multipliers = torch.ones(77)
    multipliers[4:6] = 1.5  # start token, "a photo of", then the two vectors
    scaled = hidden * multipliers[None, :, None]
    expected = scaled * (hidden.mean() / scaled.mean())  # A1111: the mean is restored
    torch.testing.assert_close(weighted.first.embeds, expected, rtol=0, atol=1e-6)


def test_sdxl_takes_clip_l_and_clip_g(sdxl_clip: TextEncoders, folders: ModelFolders) -> None:
    result = encode_prompt(sdxl_clip, "embedding:xl on a hill", embeddings=folders)
    first, _ = by_hand(sdxl_clip.encoders[0], [vectors(3, 32, 2), "on a hill"], layer=-2)
    second, pooled = by_hand(sdxl_clip.encoders[1], [vectors(3, 48, 3), "on a hill"], layer=-2)
    assert torch.equal(result.first.embeds, torch.cat([first, second], dim=-1))
    assert result.first.pooled is not None and pooled is not None
    assert torch.equal(result.first.pooled, pooled)


@pytest.mark.parametrize("weighting", ["a1111", "comfy"])
def test_each_vector_is_one_token_and_an_embedding_is_not_cut(
    sd15_clip: TextEncoders, folders: ModelFolders, weighting: str
) -> None:
    words = ", ".join(["cat"] * 37) + " dog"  # 74 tokens: the 2 vectors would cross the end
    encoded = encode_prompt(
        sd15_clip,
        f"{words} embedding:two",
        weighting,  # type: ignore[arg-type]
        embeddings=folders,
    )
    assert encoded.first.embeds.shape == (1, 154, 32)
    second, _ = by_hand(sd15_clip.encoders[0], [vectors(2, 32, 0)])
    assert torch.equal(encoded.first.embeds[:, 77:], second)


def test_a1111_moves_even_a_long_embedding_whole(
    sd15_clip: TextEncoders, folders: ModelFolders
) -> None:
    words = ", ".join(["cat"] * 35)  # 69 tokens; ComfyUI would cut a 10-vector "word"
    encoded = encode_prompt(sd15_clip, f"{words} embedding:long", embeddings=folders)
    second, _ = by_hand(sd15_clip.encoders[0], [vectors(10, 32, 4)])
    assert torch.equal(encoded.first.embeds[:, 77:], second)


def test_an_unknown_embedding_lists_what_is_there(
    sd15_clip: TextEncoders, folders: ModelFolders
) -> None:
    with pytest.raises(EmbeddingNotFoundError) as raised:
        encode_prompt(sd15_clip, "embedding:nope", embeddings=folders)
    assert str(raised.value) == (
        "embedding 'nope' was not found in the embeddings folders; available: long.safetensors, "
        "styles/A1111.safetensors, two.safetensors, wide.safetensors, xl.safetensors"
    )
    with pytest.raises(EmbeddingNotFoundError, match="no embeddings folders were given"):
        encode_prompt(sd15_clip, "embedding:two")


def test_a_file_for_another_family_names_the_file_and_the_shapes(
    sd15_clip: TextEncoders, sdxl_clip: TextEncoders, folders: ModelFolders
) -> None:
    root = folders.roots[0] / "embeddings"
    with pytest.raises(EmbeddingError) as raised:
        encode_prompt(sd15_clip, "embedding:wide", embeddings=folders)
    assert str(raised.value) == (
        f"{root / 'wide.safetensors'}: 'emb_params' has shape [1, 768]; SD 1.x needs "
        "'emb_params' or 'string_to_param.*' [n, 32] with 1 to 75 vectors. The embedding was "
        "made for another model family"
    )
    with pytest.raises(EmbeddingError) as raised:
        encode_prompt(sdxl_clip, "embedding:two", embeddings=folders)
    assert str(raised.value) == (
        f"{root / 'two.safetensors'}: holds 'emb_params' [2, 32]; SDXL needs 'clip_l' [n, 32] "
        "and 'clip_g' [n, 48]. The embedding was made for another model family"
    )


def test_prompts_without_embeddings_read_no_files(sd15_clip: TextEncoders, tmp_path: Path) -> None:
    empty = ModelFolders.of([tmp_path])
    plain = encode_prompt(sd15_clip, "a photo of a cat", embeddings=empty)
    assert torch.equal(
        plain.first.embeds, encode_prompt(sd15_clip, "a photo of a cat").first.embeds
    )
