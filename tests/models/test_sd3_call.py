"""Sd3Call is the transformer's forward, called as StableDiffusion3Pipeline calls it."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import SD3Transformer2DModel

from latentloom.models.sd3_call import Sd3Call
from latentloom.models.sd3_tiny import tiny_transformer_config


def test_sd3_call_equals_the_transformer_forward() -> None:
    torch.manual_seed(0)
    transformer: Any = SD3Transformer2DModel(**tiny_transformer_config())
    transformer.eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 8, 12, generator=generator)
    context = torch.randn(2, 7, 32, generator=generator)
    pooled = torch.randn(2, 24, generator=generator)
    timestep = torch.tensor(750.0)
    with torch.no_grad():
        ours = Sd3Call(transformer)(x, timestep, context, pooled, {})
        expected = transformer(
            hidden_states=x,
            timestep=timestep.expand(2),
            encoder_hidden_states=context,
            pooled_projections=pooled,
        ).sample
    assert ours.shape == (2, 16, 8, 12)
    assert torch.equal(ours, expected)


def test_a_missing_pooled_vector_is_zeros() -> None:
    torch.manual_seed(0)
    transformer: Any = SD3Transformer2DModel(**tiny_transformer_config())
    transformer.eval()
    x = torch.randn(1, 16, 8, 8)
    context = torch.randn(1, 5, 32)
    with torch.no_grad():
        ours = Sd3Call(transformer)(x, torch.tensor(10.0), context, None, {})
        expected = transformer(
            hidden_states=x,
            timestep=torch.tensor([10.0]),
            encoder_hidden_states=context,
            pooled_projections=torch.zeros(1, 24),
        ).sample
    assert torch.equal(ours, expected)
