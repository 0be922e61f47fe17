"""Tiny seeded CLIP text towers wrapped in the engine's handles, shared by the text tests."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from latentloom.models.family import SD2, SD15, SDXL
from latentloom.models.handles import ClipTextEncoder, TextEncoders
from latentloom.text.tokenizer import OPEN_CLIP_PAD_TOKEN, clip_tokenizer


def tiny_clip_config(hidden_size: int = 32, **overrides: object) -> CLIPTextConfig:
    settings: dict[str, object] = {
        "hidden_size": hidden_size,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "vocab_size": 49_408,
        "max_position_embeddings": 77,
        "projection_dim": hidden_size,
        "bos_token_id": 49_406,
        "eos_token_id": 49_407,
    }
    settings.update(overrides)
    return CLIPTextConfig(**settings)


def tiny_clip_model(seed: int, hidden_size: int = 32, **overrides: object) -> CLIPTextModel:
    torch.manual_seed(seed)
    return CLIPTextModel(tiny_clip_config(hidden_size, **overrides)).eval()


def tiny_clip_projection_model(seed: int, hidden_size: int = 48) -> CLIPTextModelWithProjection:
    torch.manual_seed(seed)
    return CLIPTextModelWithProjection(tiny_clip_config(hidden_size, pad_token_id=0)).eval()


@pytest.fixture
def sd15_clip() -> TextEncoders:
    encoder = ClipTextEncoder(
        model=tiny_clip_model(seed=0),
        tokenizer=clip_tokenizer(),
        layer="last",
        final_norm_on_penultimate=False,
        pad_token_id=49_407,
    )
    return TextEncoders(family=SD15, encoders=(encoder,), source="tiny-sd15")


@pytest.fixture
def sd2_clip() -> TextEncoders:
    encoder = ClipTextEncoder(
        model=tiny_clip_model(seed=1, num_hidden_layers=3),
        tokenizer=clip_tokenizer(OPEN_CLIP_PAD_TOKEN),
        layer="penultimate",
        final_norm_on_penultimate=True,
        pad_token_id=0,
    )
    return TextEncoders(family=SD2, encoders=(encoder,), source="tiny-sd2")


@pytest.fixture
def sdxl_clip() -> TextEncoders:
    first = ClipTextEncoder(
        model=tiny_clip_model(seed=2),
        tokenizer=clip_tokenizer(),
        layer="penultimate",
        final_norm_on_penultimate=False,
        pad_token_id=49_407,
    )
    second = ClipTextEncoder(
        model=tiny_clip_projection_model(seed=3),
        tokenizer=clip_tokenizer(OPEN_CLIP_PAD_TOKEN),
        layer="penultimate",
        final_norm_on_penultimate=False,
        pad_token_id=0,
    )
    return TextEncoders(family=SDXL, encoders=(first, second), source="tiny-sdxl")
