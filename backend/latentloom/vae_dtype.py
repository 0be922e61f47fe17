"""The precision a VAE decodes and encodes in: one pure rule, then autocast to apply it.

The VAE's weights stay fp32 (models/device.py `VAE_DTYPE`); on an accelerator the convolutions
are then run in half precision under `torch.autocast`, which keeps normalisation and softmax
in fp32 and needs no second copy of the weights. Which half: bf16 wherever the device has it
(the exponent range of fp32, so nothing overflows). Without bf16, fp16 only for the families
whose VAE is known to stay finite in it (SD 1.x and 2.x, as diffusers' own fp16 pipelines
decode them); SDXL's VAE overflows to NaN (a black image) in fp16 — diffusers marks it
`force_upcast` — so it, and any family not listed, stays fp32. The CPU always runs fp32
(its half-precision kernels are slow or missing), so CPU results are unchanged.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Literal

import torch

DeviceKind = Literal["cpu", "cuda", "mps"]
# Families whose VAE decodes without overflow in fp16; everything else upcasts (never NaN).
FP16_SAFE_VAE_FAMILIES = frozenset({"sd15", "sd2"})


def vae_compute_dtype(device_kind: str, family: str, *, bf16_supported: bool) -> torch.dtype:
    """The dtype the VAE computes in on `device_kind` ("cpu", "cuda", "mps"; others as cpu)."""
    if device_kind not in ("cuda", "mps"):
        return torch.float32
    if bf16_supported:
        return torch.bfloat16
    if family in FP16_SAFE_VAE_FAMILIES:
        return torch.float16
    return torch.float32


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` runs bf16 natively (CUDA: Ampere or newer; MPS: macOS 14 or newer)."""
    if device.type == "cuda":
        # Emulated bf16 on older cards is slower than fp32: count only the native kind.
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        newer = getattr(backend, "is_macos_or_newer", None)
        return bool(newer is not None and newer(14, 0))
    return False


def vae_autocast(
    device: torch.device, module_dtype: torch.dtype, *families: str
) -> AbstractContextManager[object]:
    """Autocast to the rule's dtype when it is lower than the weights'; else nothing at all.

    With several families (the VAE's own and the latent's: a standalone SDXL VAE file can
    pass for SD 1.x by its shapes) the strictest wins: fp16 only when every one allows it."""
    support = bf16_supported(device)
    wanted = {vae_compute_dtype(device.type, name, bf16_supported=support) for name in families}
    dtype = torch.float32 if torch.float32 in wanted or not wanted else wanted.pop()
    if dtype == module_dtype or module_dtype != torch.float32:
        # fp32 weights computing in fp32, or weights someone already cast: leave them be.
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
