"""The VAE precision rule: a pure function of device kind, family and bf16 support, pinned as
a table; on the CPU decode and encode are exactly the module's own fp32 computation."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from latentloom.models.load import load_checkpoint
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.vae import decode, encode
from latentloom.vae_dtype import vae_autocast, vae_compute_dtype

F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16


@pytest.mark.parametrize(
    ("device_kind", "family", "bf16", "expected"),
    [
        # The CPU computes in fp32 whatever it supports.
        ("cpu", "sd15", False, F32),
        ("cpu", "sdxl", True, F32),
        # bf16 wherever the accelerator has it: fp32's range, so SDXL's VAE stays finite.
        ("cuda", "sd15", True, BF16),
        ("cuda", "sdxl", True, BF16),
        ("mps", "sdxl", True, BF16),
        # Without bf16: fp16 for the SD 1.x/2.x VAEs, an fp32 upcast for SDXL's (NaN in fp16).
        ("cuda", "sd15", False, F16),
        ("cuda", "sd2", False, F16),
        ("cuda", "sdxl", False, F32),
        ("mps", "sdxl", False, F32),
        ("mps", "sd15", False, F16),
        # A family not known to be fp16-safe is treated like SDXL's.
        ("cuda", "sd3", False, F32),
        ("cuda", "flux", False, F32),
        # An unknown device kind gets the CPU's answer.
        ("xpu", "sd15", True, F32),
    ],
)
def test_the_vae_dtype_rule(
    device_kind: str, family: str, bf16: bool, expected: torch.dtype
) -> None:
    assert vae_compute_dtype(device_kind, family, bf16_supported=bf16) == expected


def test_sdxl_never_decodes_in_fp16() -> None:
    kinds = ("cpu", "cuda", "mps")
    dtypes = {
        vae_compute_dtype(kind, "sdxl", bf16_supported=b) for kind in kinds for b in (False, True)
    }
    assert dtypes == {F32, BF16}


def test_on_the_cpu_no_autocast_is_entered() -> None:
    context = vae_autocast(torch.device("cpu"), F32, "sd15", "sdxl")
    assert isinstance(context, nullcontext)


def test_cpu_decode_and_encode_are_the_plain_fp32_computation(tmp_path: Path) -> None:
    path = make_tiny_checkpoint("sdxl", tmp_path / "tiny-sdxl.safetensors", seed=0)
    vae = load_checkpoint(path, device="cpu", dtype=F32).vae
    module = vae.module
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        plain = module.decode(latent / vae.family.vae_scaling_factor).sample  # type: ignore[attr-defined]
    expected = ((plain + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    decoded = decode(vae, latent)
    assert decoded.dtype == F32
    assert torch.equal(decoded, expected)
    image = decoded.clone()
    with torch.inference_mode():
        mean = module.encode(image.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mean  # type: ignore[attr-defined]
    assert torch.equal(encode(vae, image), mean * vae.family.vae_scaling_factor)
