"""The GPU fast path's CPU-checkable half: SDPA attention is what a loaded UNet runs, channels-
last changes the memory layout and not the result, and nothing changes on the CPU by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.fast_path import (
    FastPathSettings,
    apply_fast_path,
    attention_processors,
    compile_cache_dir,
    uses_sdpa,
)
from latentloom.models.load import load_checkpoint
from latentloom.models.tiny import make_tiny_checkpoint


@pytest.fixture(scope="module")
def unet(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = make_tiny_checkpoint("sd15", tmp_path_factory.mktemp("fast") / "tiny.safetensors")
    module: Any = load_checkpoint(path, device="cpu", dtype=torch.float32).model.unet
    return module


def _forward(unet: Any) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    with torch.inference_mode():
        return unet(x, torch.tensor([500.0, 500.0]), encoder_hidden_states=context).sample


def test_the_loaded_unet_attends_with_sdpa(unet: Any) -> None:
    assert attention_processors(unet) == {"AttnProcessor2_0"}
    assert uses_sdpa(unet)


def test_on_the_cpu_nothing_changes_by_default(unet: Any) -> None:
    settings = FastPathSettings(channels_last=True, compile=True)
    returned: Any = apply_fast_path(unet, torch.device("cpu"), settings)
    assert returned is unet
    weight = unet.conv_in.weight
    assert weight.is_contiguous()


def test_channels_last_keeps_the_result(unet: Any) -> None:
    before = _forward(unet)
    settings = FastPathSettings(channels_last=True)
    returned: Any = apply_fast_path(unet, torch.device("cpu"), settings, force=True)
    assert returned is unet
    weight = unet.conv_in.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(_forward(unet), before, atol=1e-5, rtol=1e-5)
    unet.to(memory_format=torch.contiguous_format)  # the module fixture is shared


def test_the_compile_cache_lives_in_the_data_folder(tmp_path: Path) -> None:
    assert compile_cache_dir(tmp_path) == tmp_path / "torch-compile-cache"
