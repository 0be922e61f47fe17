"""Load a ControlNet or T2I-Adapter from `controlnet/`: one file or a diffusers folder.

As checkpoints are (`load.py`): the module is built on the meta device from a config read
off the tensor shapes (`controlnet_keys.py`), every tensor is checked before any byte is read,
then streamed in, renamed and cast. A diffusers folder's config.json names the class
(`ControlNetModel`, `ControlNetUnionModel` or `T2IAdapter`) and its weights keep their names;
a union ControlNet's single file is in diffusers' layout (`controlnet_union.py`). Pickles are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from latentloom.models.control_lora import CONTROL_LORA_MARKER, load_control_lora
from latentloom.models.controlnet_keys import (
    FileLayout,
    adapter_blocks_per_level,
    adapter_config,
    adapter_to_diffusers,
    adapter_to_original,
    controlnet_config,
    controlnet_keymap,
    controlnet_shapes_from_diffusers,
    controlnet_to_diffusers,
    detect_layout,
    hint_levels,
)
from latentloom.models.controlnet_source import ControlKind, ControlModel
from latentloom.models.controlnet_union import UNION_PREFIXES, is_union, union_config
from latentloom.models.device import choose_device, choose_dtype
from latentloom.models.diffusers_folder import weight_files
from latentloom.models.errors import CheckpointError, UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES, Family
from latentloom.models.keymap import Target
from latentloom.models.layout import Component
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream

# The streaming helpers name a component in their messages; this one is the control model.
_COMPONENT = cast(Component, "controlnet")


def load_control_model(
    path: str | Path,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> ControlModel:
    """A ControlNet or T2I-Adapter, on `device` in `dtype` (None: chosen as for checkpoints)."""
    source = Path(path)
    place = device if isinstance(device, torch.device) else choose_device(device)
    cast_to = choose_dtype(place, dtype)
    if source.is_dir():
        return _load_folder(source, place, cast_to)
    refuse_pickle_path(source)
    if not source.is_file():
        raise CheckpointError(source, "no such file or folder")
    with SafetensorsFile(source) as file:
        if CONTROL_LORA_MARKER in file:
            return load_control_lora(file, source, place, cast_to)
        found = detect_layout(file.keys(), source)
        stripped = {
            k[len(found.prefix) :]: v
            for k, v in file.shapes().items()
            if k.startswith(found.prefix)
        }
        kind, family, module, rename = _plan(found, stripped, source)
        layout = found.describe + (" (union)" if is_union(stripped) else "")
        transfers = [
            Transfer(file, key, Target(_COMPONENT, (rename(key[len(found.prefix) :]),), "copy"))
            for key in file
            if key.startswith(found.prefix)
        ]
        _fill(module, transfers, source, place, cast_to)
    return ControlModel(module, kind, family, str(source), layout)


def _plan(found: FileLayout, shapes: dict[str, tuple[int, ...]], source: Path) -> tuple[Any, ...]:
    """(kind, family, empty module, key -> diffusers name) for a file's layout."""
    from diffusers import ControlNetModel, T2IAdapter

    if found.layout == "controlnet_original":
        family, config = controlnet_config(shapes, source)
        keymap = controlnet_keymap(
            family, config["layers_per_block"], len(config["block_out_channels"])
        )
        widths = hint_levels(shapes)

        def rename(key: str) -> str:
            return controlnet_to_diffusers(key, keymap, widths) or f"<unplaced {key}>"

        return "controlnet", family, _empty(ControlNetModel, config), rename
    if found.layout == "controlnet_diffusers":
        plain = {k: v for k, v in shapes.items() if not k.startswith(UNION_PREFIXES)}
        original, _ = controlnet_shapes_from_diffusers(plain)
        family, config = controlnet_config(original, source)
        if is_union(shapes):
            from diffusers import ControlNetUnionModel

            config |= union_config(shapes)
            return "controlnet", family, _empty(ControlNetUnionModel, config), _same
        return "controlnet", family, _empty(ControlNetModel, config), _same
    per_level = adapter_blocks_per_level(shapes, found.layout)
    if found.layout == "t2i_diffusers":
        original = {adapter_to_original(k, per_level): v for k, v in shapes.items()}
        family, config = adapter_config(original, source, per_level)
        return "t2i_adapter", family, _empty(T2IAdapter, config), lambda key: f"adapter.{key}"
    family, config = adapter_config(shapes, source, per_level)

    def adapter_name(key: str) -> str:
        return adapter_to_diffusers(key, per_level)

    return "t2i_adapter", family, _empty(T2IAdapter, config), adapter_name


def _same(key: str) -> str:
    return key


def _empty(cls: Any, config: dict[str, Any]) -> nn.Module:
    with torch.device("meta"):
        return cast(nn.Module, cls(**config))


def _fill(
    module: nn.Module,
    transfers: list[Transfer],
    source: Path,
    device: torch.device,
    dtype: torch.dtype,
) -> None:
    filler = ModuleFiller(_COMPONENT, module)
    rehearse(transfers, {_COMPONENT: filler}, source)
    stream(transfers, {_COMPONENT: filler}, device, {_COMPONENT: dtype})


def _load_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> ControlModel:
    from diffusers import ControlNetModel, ControlNetUnionModel, T2IAdapter

    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(folder, f"config.json cannot be read: {error}") from None
    classes: dict[str, tuple[ControlKind, Any]] = {
        "ControlNetModel": ("controlnet", ControlNetModel),
        "T2IAdapter": ("t2i_adapter", T2IAdapter),
        "ControlNetUnionModel": ("controlnet", ControlNetUnionModel),
    }
    name = config.get("_class_name")
    if name not in classes:
        raise UnrecognizedCheckpointError(
            folder, f"config.json names class {name!r}; supported: {', '.join(classes)}"
        )
    kind, cls = classes[name]
    with torch.device("meta"):
        module: Any = cls.from_config(config)
    with_files = [SafetensorsFile(path) for path in weight_files(folder)]
    try:
        transfers = [
            Transfer(file, key, Target(_COMPONENT, (key,), "copy"))
            for file in with_files
            for key in file
        ]
        _fill(module, transfers, folder, device, dtype)
    finally:
        for file in with_files:
            file.close()
    return ControlModel(
        module, kind, _folder_family(kind, config), str(folder), f"{name}, diffusers folder"
    )


def _folder_family(kind: ControlKind, config: dict[str, Any]) -> Family:
    if kind == "t2i_adapter":
        return FAMILIES["sdxl" if config.get("adapter_type") == "full_adapter_xl" else "sd15"]
    if config.get("addition_embed_type") == "text_time":
        return FAMILIES["sdxl"]
    return FAMILIES["sd2" if config.get("cross_attention_dim") == 1024 else "sd15"]
