from __future__ import annotations

from latentloom.models.layout import SD15_TEXT, SDXL_TEXT_G
from latentloom.text.tokenizer import (
    MAX_LENGTH,
    OPEN_CLIP_PAD_TOKEN,
    VOCAB_SIZE,
    bytes_to_unicode,
    clip_tokenizer,
)
from latentloom.warmup import build_tokenizers


def test_known_prompt_ids() -> None:
    ids = clip_tokenizer()("a photo of a cat").input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_vocabulary_size_and_special_tokens() -> None:
    tokenizer = clip_tokenizer()
    assert len(tokenizer) == VOCAB_SIZE == 49_408
    assert tokenizer.bos_token_id == 49_406
    assert tokenizer.eos_token_id == 49_407
    assert tokenizer.pad_token_id == 49_407
    assert tokenizer.model_max_length == MAX_LENGTH == 77
    # Byte-level characters come first, in GPT-2's order, then the `</w>` forms, then merges.
    vocab = tokenizer.get_vocab()
    assert vocab["!"] == 0
    assert vocab["!</w>"] == 256
    assert vocab[",</w>"] == 267
    assert vocab["photo</w>"] == 1125


def test_open_clip_pads_with_exclamation_mark() -> None:
    tokenizer = clip_tokenizer(OPEN_CLIP_PAD_TOKEN)
    assert tokenizer.pad_token_id == 0
    ids = tokenizer("a cat", padding="max_length", max_length=MAX_LENGTH).input_ids
    assert ids[:4] == [49406, 320, 2368, 49407]
    assert ids[4:] == [0] * 73


def test_tokenizers_are_cached_per_pad_token() -> None:
    assert clip_tokenizer() is clip_tokenizer()
    assert clip_tokenizer(OPEN_CLIP_PAD_TOKEN) is not clip_tokenizer()


def test_the_warm_up_builds_the_tokenizers_that_loads_use() -> None:
    # Loads pass each tower's pad token explicitly; the warm-up's default must be the same one.
    build_tokenizers()
    assert clip_tokenizer() is clip_tokenizer(SD15_TEXT.pad_token)
    assert clip_tokenizer(OPEN_CLIP_PAD_TOKEN) is clip_tokenizer(SDXL_TEXT_G.pad_token)


def test_normalises_case_and_whitespace_and_round_trips_unicode() -> None:
    tokenizer = clip_tokenizer()
    assert tokenizer("A   PHOTO\tof a Cat").input_ids == tokenizer("a photo of a cat").input_ids
    ids = tokenizer("café 🐱", add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == "café 🐱"


def test_byte_map_covers_every_byte_once() -> None:
    mapping = bytes_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert len(set(mapping.values())) == 256
    assert mapping[ord("a")] == "a"
    assert mapping[ord(" ")] == "Ġ"
