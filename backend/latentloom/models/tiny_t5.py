"""A tiny random T5 v1.1 encoder in the real key layout, for tests and demo models.

The names are exactly transformers' `T5EncoderModel` names, as in `t5xxl_fp16.safetensors`
(`shared.weight`, `encoder.block.N.layer.0.SelfAttention.q.weight`, ...,
`encoder.final_layer_norm.weight`), so the real loader (`t5_encoder.py`) is what tests
exercise. The structure is XXL's — gated GELU feed-forward, relative attention bias in block 0
only — at 2 blocks of width 32. The vocabulary is the real 32,128 rows, so every id the shipped
tokenizer produces has an embedding. Values are drawn from a seeded generator with scales that
keep activations near unit size (the tiny model's outputs are meant to be non-trivial, not
meaningful).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import T5Config, T5EncoderModel

from latentloom.models.safetensors_write import save_tensors

TINY_T5: dict[str, Any] = {"d_model": 32, "d_kv": 8, "num_heads": 4, "d_ff": 64, "num_layers": 2}
T5_VOCAB_ROWS = 32_128  # T5's embedding rows (the tokenizer uses the first 32,100)
_TIED = "encoder.embed_tokens.weight"


def tiny_t5_config(d_model: int = TINY_T5["d_model"]) -> T5Config:
    """`d_model` other than 32: wider miniatures (SD 3 pads CLIP-L + CLIP-G to T5's width)."""
    sizes = {**TINY_T5, "d_model": d_model}
    return T5Config(
        vocab_size=T5_VOCAB_ROWS,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        dropout_rate=0.0,
        **sizes,
    )


def _value(name: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    if name.endswith("layer_norm.weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=generator)
    noise = torch.randn(shape, generator=generator)
    if name.endswith("relative_attention_bias.weight") or name == "shared.weight":
        return noise
    return noise / shape[-1] ** 0.5  # a linear layer: unit-size outputs for unit-size inputs


def tiny_t5_state_dict(
    seed: int = 0, prefix: str = "", d_model: int = TINY_T5["d_model"]
) -> dict[str, torch.Tensor]:
    """Seeded float32 weights of a 2-block T5 encoder, names under `prefix`."""
    with torch.device("meta"):
        structure = T5EncoderModel(tiny_t5_config(d_model)).state_dict()
    generator = torch.Generator().manual_seed(seed)
    return {
        prefix + name: _value(name, value.shape, generator)
        for name, value in structure.items()
        if name != _TIED  # stored once, as `shared.weight`, like the published files
    }


def write_tiny_t5(
    path: Path | str,
    *,
    seed: int = 0,
    prefix: str = "",
    dtype: torch.dtype = torch.float16,
    d_model: int = TINY_T5["d_model"],
) -> Path:
    """Write the tiny encoder as a standalone text encoder file (fp16 like t5xxl_fp16)."""
    state = tiny_t5_state_dict(seed, prefix, d_model)
    tensors = {key: value.to(dtype) for key, value in state.items()}
    save_tensors(path, tensors)
    return Path(path)
