"""The CLIP BPE tokenizer, built in memory from the vocabulary file shipped with the package.

OpenAI's CLIP ships one gzipped merges file; `vocab.json` and `merges.txt` are derived from it
the way `clip/simple_tokenizer.py` does: the 256 byte-level characters, the same with `</w>`,
one token per merge (the first 48,894 merges), then the two special tokens — 49,408 tokens. The
same vocabulary serves SD 1.x's CLIP-L and OpenCLIP (SD 2.x, SDXL's second encoder); only the pad
token differs, so the tokenizer is cached per pad token.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import cast

from transformers import CLIPTokenizer

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
OPEN_CLIP_PAD_TOKEN = "!"  # id 0: OpenCLIP pads with zeros, not with the end token
MAX_LENGTH = 77  # 75 prompt tokens + start + end
VOCAB_SIZE = 49_408
_MERGE_COUNT = 49_152 - 256 - 2  # CLIP's vocabulary budget minus byte tokens and specials
_VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, in its canonical order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def _merge_pair(line: str) -> tuple[str, str]:
    left, right = line.split()
    return left, right


@lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    raw = resources.files("latentloom.data").joinpath(_VOCAB_FILE).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    # Line 0 is a version header; the rest of the file is more merges than CLIP uses.
    merges = tuple(_merge_pair(line) for line in lines[1 : 1 + _MERGE_COUNT])
    byte_chars = list(bytes_to_unicode().values())
    tokens = [*byte_chars, *(char + "</w>" for char in byte_chars)]
    tokens += [left + right for left, right in merges]
    tokens += [START_TOKEN, END_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise RuntimeError(
            f"{_VOCAB_FILE} gave {len(vocab)} distinct tokens, expected {VOCAB_SIZE}; "
            "the packaged vocabulary file is damaged — reinstall latentloom"
        )
    return vocab, merges


def clip_tokenizer(pad_token: str = END_TOKEN) -> CLIPTokenizer:
    """The CLIP tokenizer; pass `pad_token="!"` for OpenCLIP encoders (SD 2.x, SDXL's second).

    Cached: callers share one instance per pad token, so treat it as read-only.
    """
    # Keyed on the pad token alone: a cache on this function would key `clip_tokenizer()` and
    # `clip_tokenizer(END_TOKEN)` apart, and the warm-up would build a tokenizer no load uses.
    return _tokenizer_for(pad_token)


@lru_cache(maxsize=4)
def _tokenizer_for(pad_token: str) -> CLIPTokenizer:
    vocab, merges = _vocab_and_merges()
    return CLIPTokenizer(
        vocab=dict(vocab),
        # transformers annotates `list[str]`, but its BPE model takes (left, right) pairs.
        merges=cast("list[str]", list(merges)),
        unk_token=END_TOKEN,
        bos_token=START_TOKEN,
        eos_token=END_TOKEN,
        pad_token=pad_token,
        model_max_length=MAX_LENGTH,
    )
