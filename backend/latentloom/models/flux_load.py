"""Stream a FLUX.1 transformer from a file in the original layout into diffusers' module.

The config comes from the shapes (`flux_keys.flux_config`), the module is built on the meta
device, and every tensor is first rehearsed against it on meta tensors: unknown names, wrong
shapes and missing parameters are reported together, naming the keys, before a byte of weights
is read. Then each tensor is read, cut into its diffusers parts (`flux_keys.flux_target`),
converted and assigned, so peak memory stays the loaded weights plus one tensor in flight; the
file is never unpickled (safetensors only).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from latentloom.models.errors import WeightMismatchError
from latentloom.models.flux_keys import FluxTarget, flux_config, flux_target
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.streaming import ModuleFiller
from latentloom.models.weight_dtype import WeightStorage

if TYPE_CHECKING:
    from diffusers import FluxTransformer2DModel

_MAX_LISTED = 12


def split_flux(tensor: torch.Tensor, target: FluxTarget) -> list[torch.Tensor]:
    """The original tensor as the diffusers tensor(s) of `target`."""
    if target.swap:
        shift, scale = tensor.chunk(2, dim=0)
        tensor = torch.cat([scale, shift], dim=0)
    if target.rows is None:
        return [tensor]
    if sum(target.rows) != tensor.shape[0]:
        return []  # reported by the rehearsal
    return list(tensor.split(list(target.rows), dim=0))


def empty_flux_transformer(config: Mapping[str, Any]) -> FluxTransformer2DModel:
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        return FluxTransformer2DModel.from_config(dict(config))  # type: ignore[no-any-return]


def _report(problems: list[str], missing: list[str]) -> str:
    lines = problems[:_MAX_LISTED]
    if len(problems) > len(lines):
        lines.append(f"and {len(problems) - len(lines)} more")
    if missing:
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        lines.append(f"missing from the file: {', '.join(missing[:_MAX_LISTED])}{more}")
    return "; ".join(lines)


def _targets(
    file: SafetensorsFile, names: Mapping[str, str], filler: ModuleFiller, hidden: int, path: Path
) -> dict[str, FluxTarget]:
    """Rehearse the whole transfer on meta tensors; every problem is raised together."""
    problems: list[str] = []
    targets: dict[str, FluxTarget] = {}
    reported: set[str] = set()  # parts of a tensor already reported as mis-shaped
    for name, key in names.items():
        target = flux_target(name, hidden)
        if target is None:
            problems.append(f"'{key}' is not part of a FLUX transformer")
            continue
        meta = torch.empty(file.shape(key), dtype=file.dtype(key), device="meta")
        parts = split_flux(meta, target)
        if len(parts) != len(target.keys):
            problems.append(
                f"'{key}' has {meta.shape[0]} rows; expected {sum(target.rows or ())} "
                f"to split into {', '.join(target.keys)}"
            )
            reported.update(f"unet '{key}'" for key in target.keys)
            continue
        for part_key, part in zip(target.keys, parts, strict=True):
            if problem := filler.check(part_key, part.shape, key):
                problems.append(problem)
        targets[key] = target
    missing = [item for item in filler.missing() if item not in reported]
    if problems or missing:
        raise WeightMismatchError(path, _report(problems, missing))
    return targets


def load_flux_transformer(
    file: SafetensorsFile,
    names: Mapping[str, str],
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype | WeightStorage,
) -> FluxTransformer2DModel:
    """The transformer whose tensors are `names` (un-prefixed original name -> file key);
    `dtype` one dtype for every weight, or storage and compute dtypes (`weight_dtype.py`)."""
    shapes = {name: file.shape(key) for name, key in names.items()}
    config = flux_config(shapes, path)
    module = empty_flux_transformer(config)
    filler = ModuleFiller("unet", cast(nn.Module, module))
    hidden = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    targets = _targets(file, names, filler, hidden, path)
    filler.use(dtype if isinstance(dtype, WeightStorage) else None)
    fallback = dtype.compute if isinstance(dtype, WeightStorage) else dtype
    for key, target in targets.items():
        # Memory-mapped where the file already holds the wanted dtype on the CPU.
        tensor = filler.read(file, key, target.keys, device, fallback)
        for part_key, part in zip(target.keys, split_flux(tensor, target), strict=True):
            filler.put(part_key, part.contiguous())
        del tensor
    filler.finish(device)
    return module
