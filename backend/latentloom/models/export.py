"""Write diffusers / transformers modules as an original-layout single-file checkpoint.

The names come from `KeyMap.to_original`, the inverse of the mapping the loader streams with,
written independently so that writing then loading tests one against the other. Tensors whose
layout differs are put back the original way (1x1 conv VAE attention, packed OpenCLIP q/k/v,
OpenCLIP's `x @ P` text projection). Values are produced one tensor at a time by `fetch`, so
a writer can generate a full-size checkpoint without holding it in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from latentloom.models.keymap import KeyMap, Transform
from latentloom.models.layout import Component
from latentloom.models.safetensors_write import TensorSpec, write_safetensors

Fetch = Callable[[Component, str], torch.Tensor]


@dataclass(frozen=True)
class OriginalTensor:
    """One tensor of the original file and the diffusers tensors it is made of, in order."""

    name: str
    transform: Transform
    parts: tuple[tuple[Component, str], ...]


def original_tensors(
    modules: Mapping[Component, nn.Module], keymap: KeyMap
) -> list[OriginalTensor]:
    grouped: dict[str, tuple[Transform, dict[int, tuple[Component, str]]]] = {}
    for component, module in modules.items():
        for key in module.state_dict():
            source = keymap.to_original(component, key)
            transform, parts = grouped.setdefault(source.key, (source.transform, {}))
            if source.part in parts or transform != source.transform:
                raise ValueError(f"two tensors map to '{source.key}' part {source.part}")
            parts[source.part] = (component, key)
    return [
        OriginalTensor(name, transform, tuple(parts[index] for index in sorted(parts)))
        for name, (transform, parts) in grouped.items()
    ]


def original_shapes(
    modules: Mapping[Component, nn.Module], keymap: KeyMap
) -> dict[str, tuple[int, ...]]:
    """Every original tensor's shape, computed on meta tensors (no memory, no values)."""
    states = {component: module.state_dict() for component, module in modules.items()}
    return {
        item.name: tuple(
            to_original_layout(item, [states[c][k].to("meta") for c, k in item.parts]).shape
        )
        for item in original_tensors(modules, keymap)
    }


def to_original_layout(item: OriginalTensor, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The inverse of `streaming.transform`: diffusers tensor(s) -> the original tensor."""
    if item.transform == "split_qkv":
        return torch.cat(list(tensors), dim=0)
    (tensor,) = tensors
    if item.transform == "conv1x1":
        return tensor[..., None, None]
    if item.transform == "transpose":
        return tensor.t().contiguous()
    if item.transform == "swap_halves":
        first, second = tensor.chunk(2, dim=0)
        return torch.cat([second, first])
    return tensor


def write_original_checkpoint(
    path: str | Path,
    modules: Mapping[Component, nn.Module],
    keymap: KeyMap,
    *,
    dtype: torch.dtype,
    fetch: Fetch | None = None,
    extra: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write `modules` (real or meta-built, then `fetch` supplies values) in original names.

    `extra` tensors (markers such as `v_pred`) are written as they are.
    """
    states = {component: module.state_dict() for component, module in modules.items()}
    items = {item.name: item for item in original_tensors(modules, keymap)}
    fetch = fetch or (lambda component, key: states[component][key])
    extra = dict(extra or {})

    shapes = original_shapes(modules, keymap)
    specs = [TensorSpec(name, dtype, shapes[name]) for name in items]
    specs += [TensorSpec(name, t.dtype, tuple(t.shape)) for name, t in extra.items()]

    def produce(spec: TensorSpec) -> torch.Tensor:
        if spec.name in extra:
            return extra[spec.name]
        item = items[spec.name]
        tensor = to_original_layout(item, [fetch(c, k) for c, k in item.parts])
        return tensor.to(dtype)

    write_safetensors(path, specs, produce, metadata)
