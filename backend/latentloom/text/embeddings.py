"""Textual-inversion embeddings: `embedding:name` in a prompt puts a file's vectors in its place.

A prompt names an embedding as `embedding:name` (ComfyUI's syntax), at the start of the text
or after a space, comma or bracket, with or without the `.safetensors` extension and in the
file's own case; the name runs to the next space, comma, colon or bracket, so it also works
inside weights: `(embedding:name:1.2)`. Files live in the `embeddings` model folders and are
read as safetensors only, never unpickled. The layouts in use:

* SD 1.x / 2.x: `emb_params` [n, width] (the common trainers' output), or AUTOMATIC1111's
  `string_to_param.*` [n, width] saved as safetensors;
* SDXL: `clip_l` [n, 768] for the first text encoder and `clip_g` [n, 1280] for the second.

Each of the n vectors takes the place of one token: it counts as one token in chunking, is
weighted like the word around it, and goes into CLIP instead of that position's token
embedding (`encode.py`). While a prompt is tokenized, vectors are handed out as negative token
ids (-1, -2, ...) that index this prompt's `VectorTable`, so the chunking code stays a function
of plain integer ids.

A name that is not in the folders is a validation error before any model work
(`references` is the hook Encode Prompt's text input declares); a file made for another
family (the wrong width, or missing `clip_l`/`clip_g`) is an error naming the file and shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from latentloom.models.errors import CheckpointError
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.node import FileReference

EMBEDDINGS = "embeddings"  # the model folder kind
SUFFIX = ".safetensors"
MAX_VECTORS = 75  # one chunk: an embedding longer than that is not a textual inversion
_REFERENCE = re.compile(r"(?<![^\s,(\[])embedding:([^\s,:()\[\]]+)")
_SDXL_KEYS = ("clip_l", "clip_g")
_A1111_PREFIX = "string_to_param."


class EmbeddingError(CheckpointError):
    """An embedding file that cannot be used with this model; the message names the file."""


class EmbeddingNotFoundError(LookupError):
    """A prompt names an embedding that is not there (`available` None: no folders given)."""

    def __init__(self, name: str, available: Sequence[str] | None) -> None:
        if available is None:
            message = f"the prompt names embedding {name!r} but no {EMBEDDINGS} folders were given"
        else:
            listed = ", ".join(available) if available else "none: the folders are empty"
            message = (
                f"embedding {name!r} was not found in the {EMBEDDINGS} folders; available: {listed}"
            )
        super().__init__(message)
        self.name, self.available = name, available


class EmbeddingFolders(Protocol):
    """Where embedding files are found (the engine's `Folders` is one)."""

    def list(self, kind: str) -> list[str]: ...

    def resolve(self, kind: str, name: str) -> Path: ...


@dataclass(frozen=True)
class EmbeddingName:
    """`embedding:name` as written in a prompt (the name without the `embedding:` prefix)."""

    name: str


def split_references(text: str) -> list[str | EmbeddingName]:
    """The text cut around each `embedding:name` (text pieces may be empty)."""
    pieces: list[str | EmbeddingName] = []
    start = 0
    for match in _REFERENCE.finditer(text):
        pieces.append(text[start : match.start()])
        pieces.append(EmbeddingName(match.group(1).rstrip(".")))
        start = match.end()
    pieces.append(text[start:])
    return pieces


def candidates(name: str) -> tuple[str, ...]:
    """Listed file names that satisfy `name`: as written, or with the extension added."""
    return (name,) if name.endswith(SUFFIX) else (name, name + SUFFIX)


def references(text: object) -> tuple[FileReference, ...]:
    """Every embedding a prompt names, for validation (the `references` hook of an input)."""
    if not isinstance(text, str):
        return ()
    names = dict.fromkeys(
        piece.name for piece in split_references(text) if isinstance(piece, EmbeddingName)
    )
    return tuple(
        FileReference(EMBEDDINGS, name, candidates(name), what="embedding") for name in names
    )


def resolve(folders: EmbeddingFolders, name: str) -> Path:
    listed = folders.list(EMBEDDINGS)
    for candidate in candidates(name):
        if candidate in listed:
            return folders.resolve(EMBEDDINGS, candidate)
    raise EmbeddingNotFoundError(name, listed)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a (small) embedding file, as float32."""
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        return {key: file.read(key, dtype=torch.float32) for key in file}


def _shapes(tensors: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{key!r} {list(value.shape)}" for key, value in sorted(tensors.items()))


def _chosen_key(tensors: dict[str, torch.Tensor], encoder: int, encoders: int) -> str | None:
    """Which tensor feeds text encoder `encoder` of a model with `encoders` of them."""
    if encoders == len(_SDXL_KEYS):
        key = _SDXL_KEYS[encoder]
        return key if key in tensors else None
    if "emb_params" in tensors:
        return "emb_params"
    a1111 = [key for key in tensors if key.startswith(_A1111_PREFIX)]
    if len(a1111) == 1:
        return a1111[0]
    return "clip_l" if "clip_l" in tensors and len(tensors) == 1 else None


def vectors_for(
    tensors: dict[str, torch.Tensor],
    path: Path,
    *,
    encoder: int,
    widths: Sequence[int],
    family: str,
) -> torch.Tensor:
    """The [n, width] vectors one text encoder takes from an embedding file."""
    expected = " and ".join(
        f"{key!r} [n, {width}]" for key, width in zip(_SDXL_KEYS, widths, strict=False)
    )
    if len(widths) != len(_SDXL_KEYS):
        expected = f"'emb_params' or 'string_to_param.*' [n, {widths[0]}]"
    key = _chosen_key(tensors, encoder, len(widths))
    if key is None:
        raise EmbeddingError(
            path,
            f"holds {_shapes(tensors) or 'no tensors'}; {family} needs {expected}",
            "The embedding was made for another model family",
        )
    vectors = tensors[key]
    vectors = vectors.unsqueeze(0) if vectors.ndim == 1 else vectors
    width = widths[encoder]
    if vectors.ndim != 2 or vectors.shape[1] != width or not 0 < len(vectors) <= MAX_VECTORS:
        raise EmbeddingError(
            path,
            f"{key!r} has shape {list(tensors[key].shape)}; {family} needs {expected} "
            f"with 1 to {MAX_VECTORS} vectors",
            "The embedding was made for another model family",
        )
    if len(widths) == len(_SDXL_KEYS):
        counts = {name: len(tensors[name]) for name in _SDXL_KEYS if name in tensors}
        if len(set(counts.values())) > 1:
            raise EmbeddingError(
                path, f"'clip_l' and 'clip_g' hold different numbers of vectors: {_shapes(tensors)}"
            )
    return vectors


EmbeddingLoader = Callable[[str], torch.Tensor]  # name -> [n, width] for one text encoder


def embedding_loaders(
    folders: EmbeddingFolders | None, widths: Sequence[int], family: str
) -> list[EmbeddingLoader]:
    """One loader per text encoder; files are read once per prompt, whichever encoder asks."""
    files: dict[str, tuple[Path, dict[str, torch.Tensor]]] = {}

    def tensors(name: str) -> tuple[Path, dict[str, torch.Tensor]]:
        if folders is None:
            raise EmbeddingNotFoundError(name, None)
        if name not in files:
            path = resolve(folders, name)
            files[name] = (path, read_tensors(path))
        return files[name]

    def loader(encoder: int) -> EmbeddingLoader:
        def load(name: str) -> torch.Tensor:
            path, found = tensors(name)
            return vectors_for(found, path, encoder=encoder, widths=widths, family=family)

        return load

    return [loader(index) for index in range(len(widths))]


@dataclass
class VectorTable:
    """The vectors one prompt puts in for one encoder, known by negative token ids."""

    load: EmbeddingLoader | None = None
    vectors: list[torch.Tensor] = field(default_factory=list)

    def ids(self, name: str) -> list[int]:
        if self.load is None:
            raise EmbeddingNotFoundError(name, None)
        rows = self.load(name)
        first = len(self.vectors)
        self.vectors.extend(rows)
        return [-(first + index + 1) for index in range(len(rows))]

    def vector(self, token_id: int) -> torch.Tensor:
        return self.vectors[-token_id - 1]


def is_vector(token_id: int) -> bool:
    return token_id < 0
