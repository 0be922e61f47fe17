"""Weight storage dtypes: the choice table, narrow storage while streaming, per-call upcast,
memory-mapped CPU loads, LoRA on fp8 weights, and fp8 results against bf16 on the tiny SD 1.5.

Stated tolerances (one UNet call of the tiny SD 1.5 on a seeded 8x8 latent, fp32 compute):
the output's largest difference from the bf16-stored model's, as a share of the bf16 output's
largest magnitude, is at most 10% for fp8 e4m3fn (measured 6.5%), 20% for fp8 e5m2 (14.6%),
and 1% for bf16 against fp32 (0.7%). Random tiny weights make these larger than on trained
models, whose weights cluster where fp8's precision is.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from latentloom.models.handles import DiffusionModel
from latentloom.models.load import load_checkpoint
from latentloom.models.lora import apply_lora_model_only
from latentloom.models.lora_tiny import make_tiny_lora
from latentloom.models.patching import applied
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.weight_dtype import (
    WEIGHT_DTYPES,
    UpcastConv2d,
    UpcastLinear,
    WeightDtypeError,
    WeightStorage,
    compute_dtype,
    weight_bytes,
    weight_storage,
    weight_storage_bytes,
)
from tests.models.conftest import TinyFile

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
FP8_TOLERANCE = {"fp8_e4m3fn": 0.10, "fp8_e5m2": 0.20}


@pytest.mark.parametrize(
    ("choice", "device", "storage", "compute"),
    [
        ("default", CPU, torch.float32, torch.float32),
        ("fp32", CPU, torch.float32, torch.float32),
        ("fp16", CPU, torch.float16, torch.float32),
        ("bf16", CPU, torch.bfloat16, torch.float32),
        ("fp8_e4m3fn", CPU, torch.float8_e4m3fn, torch.float32),
        ("fp8_e4m3fn_fast", CPU, torch.float8_e4m3fn, torch.float32),
        ("fp8_e5m2", CPU, torch.float8_e5m2, torch.float32),
        ("fp16", CUDA, torch.float16, torch.float16),
        ("bf16", CUDA, torch.bfloat16, torch.bfloat16),
        ("fp32", CUDA, torch.float32, torch.float32),
    ],
)
def test_choice_table(
    choice: str, device: torch.device, storage: torch.dtype, compute: torch.dtype
) -> None:
    assert weight_storage(choice, device, torch.float32) == WeightStorage(storage, compute)


def test_default_keeps_the_engine_dtype() -> None:
    assert weight_storage("default", CUDA, torch.float16) == WeightStorage(
        torch.float16, torch.float16
    )


def test_unknown_choice_names_the_choices() -> None:
    with pytest.raises(WeightDtypeError) as caught:
        weight_storage("int4", CPU, torch.float32)
    assert str(caught.value) == (
        "weight_dtype 'int4': not one of: default, fp8_e4m3fn, fp8_e4m3fn_fast, fp8_e5m2, "
        "fp32, fp16, bf16"
    )
    assert WEIGHT_DTYPES[0] == "default"


def test_fp8_refused_without_float8_in_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch, "float8_e5m2")
    with pytest.raises(WeightDtypeError, match=r"has no float8_e5m2 dtype; choose fp16 or bf16"):
        weight_storage("fp8_e5m2", CPU, torch.float32)


def test_fp8_refused_on_mps() -> None:
    with pytest.raises(WeightDtypeError, match="Apple MPS cannot hold float8 tensors"):
        weight_storage("fp8_e4m3fn", torch.device("mps"), torch.float16)


def test_fp8_conversion_saturates_instead_of_overflowing(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    save_file({"w": torch.tensor([1.0, 500.0, -1000.0], dtype=torch.float16)}, str(path))
    with SafetensorsFile(path) as file:
        read = file.read("w", dtype=torch.float8_e4m3fn)
    assert read.to(torch.float32).tolist() == [1.0, 448.0, -448.0]


def _unet(model: DiffusionModel) -> Any:
    """The UNet, untyped: diffusers ships no type information for its modules."""
    return cast(Any, model.unet)


def _load(path: Path, choice: str) -> DiffusionModel:
    storage = weight_storage(choice, CPU, torch.float32)
    return load_checkpoint(path, device=CPU, dtype=None, weights=storage).model


def test_fp8_stores_linear_and_conv_weights_only(tiny_file: TinyFile) -> None:
    unet = _unet(_load(tiny_file("sd15"), "fp8_e4m3fn"))
    module: nn.Module = unet
    # The first parameter stays in the compute dtype: it is what callers read the dtype from.
    assert unet.conv_in.weight.dtype == torch.float32
    assert compute_dtype(module) == torch.float32
    assert unet.dtype == torch.float32  # diffusers' ModelMixin.dtype agrees
    layers = dict(module.named_modules())
    resnet_conv = layers["down_blocks.0.resnets.0.conv1"]
    to_q = layers["mid_block.attentions.0.transformer_blocks.0.attn1.to_q"]
    assert isinstance(resnet_conv, UpcastConv2d) and isinstance(resnet_conv, nn.Conv2d)
    assert isinstance(to_q, UpcastLinear)
    assert resnet_conv.weight.dtype == torch.float8_e4m3fn
    assert resnet_conv.bias is not None and resnet_conv.bias.dtype == torch.float32
    assert layers["down_blocks.0.resnets.0.norm1"].weight.dtype == torch.float32
    narrow = sum(p.numel() for p in module.parameters() if p.dtype == torch.float8_e4m3fn)
    total = sum(p.numel() for p in module.parameters())
    assert narrow / total > 0.9


def test_half_storage_computes_in_fp32_on_cpu(tiny_file: TinyFile) -> None:
    fp32 = _unet(_load(tiny_file("sd15"), "fp32"))
    fp16 = _unet(_load(tiny_file("sd15"), "fp16"))
    sample_in = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 7, fp32.config.cross_attention_dim)
    with torch.no_grad():
        expected = fp32(sample_in, 500, encoder_hidden_states=context).sample
        got = fp16(sample_in, 500, encoder_hidden_states=context).sample
    assert got.dtype == torch.float32
    # The tiny checkpoint's weights are fp16 values: stored as fp16 they lose nothing.
    assert torch.equal(got, expected)


def _forward(model: DiffusionModel) -> torch.Tensor:
    """One UNet call, with the model's weight patches applied (as sampling applies them)."""
    unet = _unet(model)
    generator = torch.Generator().manual_seed(1)
    latent = torch.randn(1, 4, 8, 8, generator=generator)
    context = torch.randn(1, 7, unet.config.cross_attention_dim, generator=generator)
    with applied(unet, model.patches), torch.no_grad():
        return unet(latent, 500, encoder_hidden_states=context).sample


@pytest.fixture(scope="module")
def bf16_result(tiny_file: TinyFile) -> torch.Tensor:
    return _forward(_load(tiny_file("sd15"), "bf16"))


def test_bf16_close_to_fp32(tiny_file: TinyFile, bf16_result: torch.Tensor) -> None:
    fp32 = _forward(_load(tiny_file("sd15"), "default"))
    assert (fp32 - bf16_result).abs().max() <= 0.01 * bf16_result.abs().max()
    assert not torch.equal(fp32, bf16_result)  # bf16 storage did round the weights


@pytest.mark.parametrize("choice", sorted(FP8_TOLERANCE))
def test_fp8_within_tolerance_of_bf16(
    tiny_file: TinyFile, bf16_result: torch.Tensor, choice: str
) -> None:
    result = _forward(_load(tiny_file("sd15"), choice))
    assert torch.isfinite(result).all()
    assert (result - bf16_result).abs().max() <= FP8_TOLERANCE[choice] * bf16_result.abs().max()


def test_lora_applies_to_fp8_weights_and_restores_them(tiny_file: TinyFile, tmp_path: Path) -> None:
    model = _load(tiny_file("sd15"), "fp8_e4m3fn")
    lora = make_tiny_lora(_unet(model), [], tmp_path / "lora.safetensors", rank=4, seed=2)
    patched = apply_lora_model_only(model, lora, 1.0)
    module: nn.Module = _unet(model)
    name = patched.patches[0].target
    weight = dict(module.named_parameters())[name]
    before = weight.detach().clone()
    assert before.dtype == torch.float8_e4m3fn
    delta = patched.patches[0].delta(before)
    with applied(module, patched.patches[:1]):
        expected = (before.to(torch.float32) + delta.to(torch.float32)).to(torch.float8_e4m3fn)
        assert torch.equal(weight.view(torch.uint8), expected.view(torch.uint8))
    assert torch.equal(weight.view(torch.uint8), before.view(torch.uint8))
    with_lora, without = _forward(patched), _forward(model)
    assert torch.isfinite(with_lora).all()
    assert not torch.equal(with_lora, without)


def test_cpu_load_maps_weights_stored_in_the_compute_dtype(tmp_path: Path) -> None:
    path = tmp_path / "fp32.safetensors"
    save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(path))
    with SafetensorsFile(path) as file:
        mapped = file.map("w")
    assert mapped is not None
    assert mapped.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]  # alive after close
    mapped.add_(1.0)  # a private mapping: this process's pages change, the file does not
    with SafetensorsFile(path) as file:
        assert file.read("w").tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_misaligned_tensor_is_read_not_mapped(tmp_path: Path) -> None:
    # Written by hand: a 3-byte tensor first puts the fp32 one at an odd offset (writers that
    # sort by name do this; the reference writer sorts by alignment).
    header = json.dumps(
        {
            "a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [3, 11]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    data = bytes([1, 1, 1]) + struct.pack("<2f", 1.0, 2.0)
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    with SafetensorsFile(path) as file:
        assert file.map("b") is None
        assert file.map("a") is not None
        assert file.read("b").tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("choice", "compute_bytes", "held"),
    [
        ("default", 4, 2000),  # fp16 file held in fp32 on the CPU, as CostQuery.weights says
        ("default", 2, 1000),
        ("fp32", 2, 2000),
        ("fp16", 4, 1000),
        ("bf16", 4, 1000),
        ("fp8_e4m3fn", 4, 500),
        ("fp8_e4m3fn_fast", 2, 500),
        ("fp8_e5m2", 4, 500),
    ],
)
def test_cost_budget_counts_weights_as_stored(choice: str, compute_bytes: int, held: int) -> None:
    assert weight_storage_bytes(1000, choice, compute_bytes) == held


def test_loaded_bytes_match_the_cost_estimate(tiny_file: TinyFile) -> None:
    # Linear/Conv weights are over 90% of the tiny UNet; the rest stays in fp32, so the fp8
    # model holds a little more than the estimate's quarter of fp32.
    path = tiny_file("sd15")
    fp32 = weight_bytes(_unet(_load(path, "fp32")))
    fp8 = weight_bytes(_unet(_load(path, "fp8_e4m3fn")))
    assert fp32 // 4 < fp8 < 0.35 * fp32
