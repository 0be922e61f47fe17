"""Pick the device and dtypes models run in.

Device: the one asked for (checked to exist), else CUDA, then Apple MPS, then the CPU.
Dtype of the UNet and text encoders: fp16 on CUDA and MPS (half the memory, tensor cores), fp32
on the CPU (CPU half-precision kernels are slow or missing). The VAE stays fp32 everywhere by
default: it is small (84M parameters, ~335 MB) and SDXL's VAE overflows to NaN in fp16 (diffusers
marks it `force_upcast`); decoding in fp32 costs a little speed and never a black image.
"""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp32": torch.float32,
}
VAE_DTYPE = torch.float32


class DeviceError(ValueError):
    """A requested device or dtype does not exist here."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _check_available(device: torch.device, forced: str) -> None:
    if device.type == "cpu":
        return
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) < count:
            return
        raise DeviceError(
            f"device {forced!r} was asked for but this machine has {count} CUDA device(s) "
            f"(torch {torch.__version__}); use 'cpu' or leave the device unset"
        )
    if device.type == "mps" and _mps_available():
        return
    raise DeviceError(f"device {forced!r} is not available here; use 'cpu', 'cuda' or 'mps'")


def choose_device(forced: str | None = None) -> torch.device:
    """The forced device if given (and present), else cuda, then mps, then cpu."""
    if forced:
        try:
            device = torch.device(forced)
        except RuntimeError as error:
            raise DeviceError(f"{forced!r} is not a device name ({error})") from None
        _check_available(device, forced)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_dtype(device: torch.device, forced: str | torch.dtype | None = None) -> torch.dtype:
    """The UNet / text encoder dtype: `forced` ('fp16', 'bf16', 'fp32') or the device's default."""
    if isinstance(forced, torch.dtype):
        if forced not in DTYPES.values():
            raise DeviceError(f"dtype {forced} is not supported; use one of {', '.join(DTYPES)}")
        return forced
    if forced:
        if forced not in DTYPES:
            raise DeviceError(f"dtype {forced!r} is not known; use one of {', '.join(DTYPES)}")
        return DTYPES[forced]
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32
