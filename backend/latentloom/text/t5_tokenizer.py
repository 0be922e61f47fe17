"""The T5 tokenizer (SD 3 / 3.5 and FLUX.1), built offline from the vocabulary we ship.

A single-file checkpoint carries no tokenizer, so the package ships Google's T5 SentencePiece
vocabulary as a gzipped `tokenizers` JSON file (`data/t5_tokenizer.json.gz`, see its NOTICE).
It is decompressed in memory and wrapped in transformers' T5 tokenizer (in transformers 5 the
`tokenizers`-backed class that `T5TokenizerFast` used to name), so callers (our encoder and
diffusers' pipelines in the oracle tests) see the tokenizer they expect: no start token,
`</s>` (1) appended, `<pad>` (0) for padding, 100 sentinel tokens after the 32,000 pieces.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from transformers import T5Tokenizer

PAD_ID = 0
END_ID = 1
VOCAB_SIZE = 32_100  # 32,000 SentencePiece pieces + <extra_id_0..99>
_VOCAB_FILE = "t5_tokenizer.json.gz"


@lru_cache(maxsize=1)
def t5_tokenizer() -> T5Tokenizer:
    """The shared T5 tokenizer; cached, so treat it as read-only."""
    from tokenizers import Tokenizer

    raw = resources.files("latentloom.data").joinpath(_VOCAB_FILE).read_bytes()
    backend = Tokenizer.from_str(gzip.decompress(raw).decode("utf-8"))
    tokenizer = T5Tokenizer(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=100,
        # No length limit of its own: SD 3 / FLUX pad to a minimum and keep long prompts whole.
        model_max_length=1_000_000_000,
    )
    if len(tokenizer) != VOCAB_SIZE or tokenizer.pad_token_id != PAD_ID:
        raise RuntimeError(
            f"{_VOCAB_FILE} gave {len(tokenizer)} tokens with pad id {tokenizer.pad_token_id}, "
            f"expected {VOCAB_SIZE} and {PAD_ID}; the packaged vocabulary file is damaged — "
            "reinstall latentloom"
        )
    return tokenizer
