"""Weight dtype per loader: the dtype weights are stored in, and the dtype they compute in.

A loader's `weight_dtype` choice ("default", "fp32", "fp16", "bf16", and ComfyUI's
"fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2") becomes a `WeightStorage`: a storage dtype for
the big matrices and a compute dtype for the arithmetic. Where the two differ, only the
weights of `Linear` and `Conv` layers (over 99% of a diffusion model's bytes) are stored in the
storage dtype, and each such layer casts its weight to the input's dtype on every call
(`UpcastLinear`, `UpcastConv2d`, ...: the layer's class is swapped for a subclass whose forward
casts, so `isinstance` checks and the parameters themselves stay as they were). Everything
else (norms, embeddings, biases of other layers) stays in the compute dtype, where it is small
and precision-sensitive. The model's first floating parameter also stays in the compute dtype,
because callers, ours and diffusers' `ModelMixin.dtype` alike, read a module's compute dtype
from it. The cast to the storage dtype happens while streaming, tensor by tensor
(`streaming.py`), so no full-precision copy of the model is ever made.

Compute dtype: fp32 on the CPU (its half-precision kernels are slow or missing); on CUDA and
MPS the stored width itself for fp16 / bf16, and for fp8 bf16 where the GPU supports it, else
fp16 (there is no fp8 arithmetic here: "fp8_e4m3fn_fast" stores the same bytes and computes
the same way as "fp8_e4m3fn"; ComfyUI's fp8 matrix multiply is not implemented).

LoRA and other weight patches still apply: `patching.applied` adds the delta in float32 to the
stored weight and rounds it once to the storage dtype, then restores the exact stored bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

# The loader widget's values, in the order the widget lists them (ComfyUI's names first).
WEIGHT_DTYPES: Final[tuple[str, ...]] = (
    "default",
    "fp8_e4m3fn",
    "fp8_e4m3fn_fast",
    "fp8_e5m2",
    "fp32",
    "fp16",
    "bf16",
)
FLOAT_WIDTHS: Final[dict[str, torch.dtype]] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}
# Names of torch's float8 dtypes (looked up by name: older torch builds have none of them).
FP8_NAMES: Final[dict[str, str]] = {
    "fp8_e4m3fn": "float8_e4m3fn",
    "fp8_e4m3fn_fast": "float8_e4m3fn",
    "fp8_e5m2": "float8_e5m2",
}


class WeightDtypeError(ValueError):
    """A weight dtype that is not known, or that cannot apply on this torch / device."""

    def __init__(self, choice: str, problem: str) -> None:
        super().__init__(f"weight_dtype {choice!r}: {problem}")
        self.choice = choice
        self.problem = problem


@dataclass(frozen=True)
class WeightStorage:
    """`storage`: the dtype Linear/Conv weights are kept in; `compute`: everything else."""

    storage: torch.dtype
    compute: torch.dtype

    @property
    def upcasts(self) -> bool:
        """Whether layers must cast their weight on each call."""
        return self.storage != self.compute

    @property
    def bytes_per_weight(self) -> int:
        return torch.empty((), dtype=self.storage).element_size()


def same_as(dtype: torch.dtype) -> WeightStorage:
    """Today's behaviour: everything stored and computed in `dtype`."""
    return WeightStorage(storage=dtype, compute=dtype)


def _fp8_dtype(choice: str, device: torch.device) -> torch.dtype:
    dtype = getattr(torch, FP8_NAMES[choice], None)
    if not isinstance(dtype, torch.dtype):
        raise WeightDtypeError(
            choice,
            f"this torch ({torch.__version__}) has no {FP8_NAMES[choice]} dtype; "
            "choose fp16 or bf16, or install torch 2.1 or newer",
        )
    if device.type == "mps":
        raise WeightDtypeError(
            choice, "Apple MPS cannot hold float8 tensors; choose fp16 or bf16 on this device"
        )
    return dtype


def _bf16_supported(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def compute_dtype_for(storage: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype a model stored in `storage` computes in on `device` (see the module docstring)."""
    if device.type == "cpu" or storage == torch.float32:
        return torch.float32
    if storage in (torch.float16, torch.bfloat16):
        return storage
    return torch.bfloat16 if _bf16_supported(device) else torch.float16


def weight_storage(choice: str, device: torch.device, default: torch.dtype) -> WeightStorage:
    """The loader choice as storage and compute dtypes; `default` is the engine's dtype."""
    if choice == "default":
        return same_as(default)
    if choice in FLOAT_WIDTHS:
        storage = FLOAT_WIDTHS[choice]
    elif choice in FP8_NAMES:
        storage = _fp8_dtype(choice, device)
    else:
        raise WeightDtypeError(choice, f"not one of: {', '.join(WEIGHT_DTYPES)}")
    return WeightStorage(storage=storage, compute=compute_dtype_for(storage, device))


# --- layers that cast their weight per call ---------------------------------------------


class UpcastLinear(nn.Linear):
    """A Linear whose stored weight is cast to the input's dtype on each call."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(input.dtype)
        return F.linear(input, self.weight.to(input.dtype), bias)


class UpcastConv1d(nn.Conv1d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(input.dtype)
        return self._conv_forward(input, self.weight.to(input.dtype), bias)


class UpcastConv2d(nn.Conv2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(input.dtype)
        return self._conv_forward(input, self.weight.to(input.dtype), bias)


class UpcastConv3d(nn.Conv3d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(input.dtype)
        return self._conv_forward(input, self.weight.to(input.dtype), bias)


# Exact classes only: a subclass with its own forward (a LoRA layer, a quantised layer) would
# lose that forward if its class were swapped, so such layers keep the compute dtype.
UPCAST_CLASSES: Final[dict[type[nn.Module], type[nn.Module]]] = {
    nn.Linear: UpcastLinear,
    nn.Conv1d: UpcastConv1d,
    nn.Conv2d: UpcastConv2d,
    nn.Conv3d: UpcastConv3d,
}


def _first_floating(module: nn.Module) -> str | None:
    for name, parameter in module.named_parameters():
        if parameter.is_floating_point():
            return name
    return None


def _storable_layers(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(prefix, layer) of every exact Linear/Conv layer whose weight may be stored narrow."""
    first = _first_floating(module)
    for name, layer in module.named_modules():
        if type(layer) in UPCAST_CLASSES and getattr(layer, "weight", None) is not None:
            prefix = f"{name}." if name else ""
            if prefix + "weight" != first:
                yield prefix, layer


def stored_narrow(module: nn.Module) -> frozenset[str]:
    """State-dict names of the parameters kept in the storage dtype (the weights, not biases).

    Works on a meta-built module: only names, types and shapes are consulted.
    """
    return frozenset(prefix + "weight" for prefix, _ in _storable_layers(module))


def install_upcast(module: nn.Module) -> int:
    """Swap every storable layer's class for its casting subclass; returns how many."""
    count = 0
    for _, layer in _storable_layers(module):
        layer.__class__ = UPCAST_CLASSES[type(layer)]
        count += 1
    return count


def compute_dtype(module: nn.Module) -> torch.dtype:
    """The dtype `module` computes in: its first floating parameter's (kept so on purpose)."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def weight_bytes(module: nn.Module) -> int:
    """Bytes of the module's parameters and buffers as stored (what residency costs)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


# Bytes per number of each choice's storage, without touching torch's dtypes (costs are
# estimated before anything runs, on any torch).
_STORED_BYTES: Final[dict[str, int]] = {
    "fp32": 4,
    "fp16": 2,
    "bf16": 2,
    "fp8_e4m3fn": 1,
    "fp8_e4m3fn_fast": 1,
    "fp8_e5m2": 1,
}


def weight_storage_bytes(file_bytes: int, choice: str, compute_bytes: int) -> int:
    """Memory a model file's weights take once loaded with `choice`, for the cost budget.

    Like `CostQuery.weights`, files are taken to hold fp16 (as checkpoints usually do);
    "default" holds them in the engine's compute width (`compute_bytes` per number).
    """
    per_number = _STORED_BYTES.get(choice, max(2, compute_bytes))
    return file_bytes * per_number // 2
