"""Write `.safetensors` files one tensor at a time, deterministically.

The header needs every name, dtype and shape up front, but no tensor data; so the writer takes
the specs first and asks a `produce` callback for each tensor as it writes it. A full-size random
checkpoint can then be generated without ever holding more than one tensor. Entries are sorted by
name and the JSON is written canonically, so the same tensors always give the same bytes. The
file appears atomically: it is written under a temporary name and renamed when complete
(`safe_write.atomic_write`, which never writes through a symlink).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from latentloom.models.safetensors_file import DTYPE_NAMES
from latentloom.safe_write import atomic_write


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * torch.empty((), dtype=self.dtype).element_size()


def _header_bytes(specs: Sequence[TensorSpec], metadata: Mapping[str, str]) -> bytes:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset = 0
    for spec in specs:
        header[spec.name] = {
            "dtype": DTYPE_NAMES[spec.dtype],
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces to a multiple of 8 so the data section starts aligned, like the reference.
    return encoded + b" " * (-len(encoded) % 8)


def _tensor_bytes(spec: TensorSpec, tensor: torch.Tensor) -> memoryview:
    if tensor.dtype != spec.dtype or tuple(tensor.shape) != spec.shape:
        raise ValueError(
            f"'{spec.name}' was declared {spec.dtype} {list(spec.shape)} but produced "
            f"{tensor.dtype} {list(tensor.shape)}"
        )
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data


def write_safetensors(
    path: str | Path,
    specs: Sequence[TensorSpec],
    produce: Callable[[TensorSpec], torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write `specs` (sorted by name) to `path`, calling `produce` once per tensor, in order."""
    ordered = sorted(specs, key=lambda spec: spec.name)
    names = [spec.name for spec in ordered]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor names in specs")
    header = _header_bytes(ordered, metadata or {})

    def write(handle: BinaryIO) -> None:
        handle.write(len(header).to_bytes(8, "little"))
        handle.write(header)
        for spec in ordered:
            handle.write(_tensor_bytes(spec, produce(spec)))

    atomic_write(Path(path), write, real_folder=False)  # the caller's folder, links and all


def save_tensors(
    path: str | Path,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write an in-memory mapping of tensors (small files: tests, tiny checkpoints)."""
    specs = [
        TensorSpec(name, tensor.dtype, tuple(tensor.shape)) for name, tensor in tensors.items()
    ]
    write_safetensors(path, specs, lambda spec: tensors[spec.name], metadata)
