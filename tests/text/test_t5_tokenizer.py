"""The shipped T5 vocabulary, loaded offline: ids pinned against T5's published tokenizer."""

from __future__ import annotations

from latentloom.text.t5_tokenizer import END_ID, PAD_ID, VOCAB_SIZE, t5_tokenizer


def test_a_photo_of_a_cat_has_t5s_ids_and_ends_with_the_end_token() -> None:
    assert t5_tokenizer()("a photo of a cat").input_ids == [3, 9, 1202, 13, 3, 9, 1712, END_ID]


def test_padding_uses_pad_id_zero_and_no_start_token() -> None:
    ids = t5_tokenizer()("cat", padding="max_length", max_length=5).input_ids
    assert ids == [1712, END_ID, PAD_ID, PAD_ID, PAD_ID]
    assert (PAD_ID, END_ID) == (0, 1)


def test_vocabulary_has_32000_pieces_and_100_sentinels() -> None:
    tokenizer = t5_tokenizer()
    assert len(tokenizer) == VOCAB_SIZE == 32_100
    assert tokenizer.convert_ids_to_tokens([2, 32_000, 32_099]) == [
        "<unk>",
        "<extra_id_99>",
        "<extra_id_0>",
    ]


def test_long_prompts_are_not_truncated() -> None:
    ids = t5_tokenizer()(" ".join(["cat"] * 600)).input_ids
    assert len(ids) == 601 and ids[-1] == END_ID
