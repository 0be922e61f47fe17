"""Load LoRA files and turn them into weight patches on MODEL and CLIP handles.

A LoRA stores, for each adapted layer, two low-rank factors `up` [out, r] and `down` [r, in]
(4-D for convolutions) and optionally `alpha`; the layer's weight becomes
`W + strength * alpha / r * up @ down`. Two key layouts are read:

* kohya-ss: `lora_unet_<name>.lora_down.weight`, `.lora_up.weight`, `.alpha`, text encoders as
  `lora_te_` (SD 1.x/2.x) or `lora_te1_`/`lora_te2_` (SDXL);
* diffusers/PEFT: `unet.<name>.lora_A.weight`/`.lora_B.weight` (or `.lora.down.weight`/
  `.lora.up.weight`), `text_encoder.`/`text_encoder_2.`; alpha comes from `.alpha` keys or from
  the `lora_adapter_metadata` diffusers writes into the file header, else defaults to the rank.

Names are resolved by `lora_names` against the actual modules. Every key must be used: a key
that matches no layer, a layer with a missing factor, a factor of the wrong shape or a LoRA
variant we cannot apply (LoHa, LoKr, DoRA, ...) is an error naming the keys, because silently
dropping part of a LoRA gives plausible but wrong images (ComfyUI only logs a warning). The one
exception is `bundle_emb.*`: textual-inversion vectors some trainers bundle into the file. They
are not weight patches, so we skip them.

Applying a LoRA returns new handles with `LoraPatch`es appended; weights are only changed inside
`patching.applied`, so the input handles (and everything cached from them) stay valid.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch

from latentloom.models.errors import CheckpointError
from latentloom.models.handles import (
    ClipTextEncoder,
    DiffusionModel,
    T5TextEncoder,
    TextEncoders,
)
from latentloom.models.lora_names import strip_text_model, text_encoder_index, unet_index
from latentloom.models.safetensors_file import SafetensorsFile

Component = Literal["unet", "text_encoder", "text_encoder_2"]
Part = Literal["up", "down", "alpha"]

_PREFIXES: tuple[tuple[str, Component, Literal["kohya", "dotted"]], ...] = (
    ("lora_unet_", "unet", "kohya"),
    ("lora_te1_", "text_encoder", "kohya"),
    ("lora_te2_", "text_encoder_2", "kohya"),
    ("lora_te_", "text_encoder", "kohya"),
    ("unet.", "unet", "dotted"),
    ("text_encoder_2.", "text_encoder_2", "dotted"),
    ("text_encoder.", "text_encoder", "dotted"),
)
_PARTS: tuple[tuple[str, Part], ...] = (
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".alpha", "alpha"),
)
# Keys of LoRA variants whose maths differs from up @ down; refused, not approximated.
_UNSUPPORTED = re.compile(
    r"hada_|lokr_|dora_scale|lora_magnitude_vector|\.lora_mid\.|\.diff(_b)?$|oft_|boft_"
)
_IGNORED_PREFIXES = ("bundle_emb.",)
METADATA_KEY = "lora_adapter_metadata"  # diffusers' PEFT config, JSON, per component prefix
_LISTED_KEYS = 5


class LoraError(CheckpointError):
    """A LoRA file could not be applied to the given model; the message lists the keys."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no truth value to compare by
class LoraPatch:
    """`target += scale * up @ down`, reshaped to the target (a `handles.WeightPatch`)."""

    target: str
    up: torch.Tensor  # [out, rank] or [out, rank, 1, 1]
    down: torch.Tensor  # [rank, in] or [rank, in, kh, kw]
    scale: float  # strength * alpha / rank

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        up = self.up.to(device=weight.device, dtype=torch.float32).flatten(1)
        down = self.down.to(device=weight.device, dtype=torch.float32).flatten(1)
        return (self.scale * (up @ down)).reshape(weight.shape)


@dataclass(frozen=True, eq=False)
class LoraLayer:
    """One adapted layer as read from a file, resolved to a module of our model."""

    component: Component
    module: str  # module name inside the component, e.g. `down_blocks.0...to_q`
    up: torch.Tensor
    down: torch.Tensor
    scale: float  # alpha / rank (or alpha / sqrt(rank) for rsLoRA), before strength

    def patch(self, strength: float) -> LoraPatch:
        return LoraPatch(f"{self.module}.weight", self.up, self.down, strength * self.scale)


@dataclass
class _Group:
    """The keys of one adapted layer, collected while scanning the file."""

    component: Component
    name: str  # as written in the file, without prefix and part suffix
    keys: dict[Part, str] = field(default_factory=dict)


def apply_lora(
    model: DiffusionModel,
    clip: TextEncoders,
    path: str | Path,
    strength_model: float,
    strength_clip: float,
) -> tuple[DiffusionModel, TextEncoders]:
    """New MODEL and CLIP handles with the LoRA's patches appended; the inputs are unchanged.

    The whole file is validated even where a strength is 0; a zero strength then adds no
    patches on that side, so it is exactly the unpatched model.
    """
    layers = load_lora(path, model, clip)
    if strength_model != 0:
        unet_patches = tuple(
            layer.patch(strength_model) for layer in layers if layer.component == "unet"
        )
        model = dataclasses.replace(model, patches=model.patches + unet_patches)
    if strength_clip != 0:
        encoders = tuple(
            _patch_encoder(encoder, component, layers, strength_clip)
            for encoder, component in zip(clip.encoders, _text_components(clip), strict=False)
        )
        clip = dataclasses.replace(clip, encoders=encoders)
    return model, clip


def apply_lora_model_only(
    model: DiffusionModel, path: str | Path, strength: float
) -> DiffusionModel:
    """A new MODEL handle with the LoRA's UNet patches; its text-encoder layers are skipped
    (LoraLoaderModelOnly), every UNet key is still checked."""
    layers = load_lora(path, model, None)
    if strength == 0:
        return model
    patches = tuple(layer.patch(strength) for layer in layers if layer.component == "unet")
    return dataclasses.replace(model, patches=model.patches + patches)


def _patch_encoder(
    encoder: ClipTextEncoder | T5TextEncoder,
    component: Component,
    layers: Sequence[LoraLayer],
    strength: float,
) -> ClipTextEncoder | T5TextEncoder:
    patches = tuple(layer.patch(strength) for layer in layers if layer.component == component)
    return dataclasses.replace(encoder, patches=encoder.patches + patches) if patches else encoder


def _text_components(clip: TextEncoders) -> tuple[Component, ...]:
    components: tuple[Component, ...] = ("text_encoder", "text_encoder_2")
    return components[: len(clip.encoders)]


def load_lora(
    path: str | Path, model: DiffusionModel, clip: TextEncoders | None
) -> list[LoraLayer]:
    """Read and validate every key of a LoRA file against `model` and `clip` (None: the
    text-encoder keys are skipped, as for a model-only LoRA loader)."""
    modules: dict[Component, torch.nn.Module] = {}
    # diffusers' ModelMixin is a torch Module, but mypy cannot see through its lazy imports.
    modules["unet"] = cast(torch.nn.Module, model.unet)
    if clip is not None:
        for encoder, component in zip(clip.encoders, _text_components(clip), strict=False):
            modules[component] = encoder.model
    with SafetensorsFile(path) as file:
        groups, unsupported, unmatched = _group_keys(file.keys())
        if clip is None:
            groups = {key: group for key, group in groups.items() if group.component == "unet"}
        config = _adapter_config(file.metadata)
        layers, problems = _resolve(file, groups, modules, config, unmatched)
    if unsupported:
        problems.insert(
            0,
            f"{_count(unsupported)} of LoRA variants Latentloom cannot apply "
            f"(LoHa, LoKr, DoRA, OFT, ...): {_listing(unsupported)}",
        )
    if unmatched:
        problems.insert(
            0,
            f"{_count(unmatched)} matching no layer of this {model.family.display_name} model: "
            f"{_listing(unmatched)}",
        )
    if problems:
        raise LoraError(
            path,
            "; ".join(problems),
            f"Check that the LoRA was made for {model.family.display_name}",
        )
    return layers


def _count(keys: Sequence[str]) -> str:
    return f"{len(keys)} key" + ("" if len(keys) == 1 else "s")


def _listing(keys: Sequence[str]) -> str:
    ordered = sorted(keys)
    shown = ", ".join(repr(key) for key in ordered[:_LISTED_KEYS])
    more = len(ordered) - _LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def _group_keys(
    keys: Sequence[str],
) -> tuple[dict[tuple[Component, str], _Group], list[str], list[str]]:
    """Sort keys into per-layer groups; also return unsupported and unparseable keys."""
    groups: dict[tuple[Component, str], _Group] = {}
    unsupported: list[str] = []
    unmatched: list[str] = []
    for key in keys:
        if key.startswith(_IGNORED_PREFIXES):
            continue
        if _UNSUPPORTED.search(key):
            unsupported.append(key)
            continue
        parsed = _parse_key(key)
        if parsed is None:
            unmatched.append(key)
            continue
        component, name, part = parsed
        group = groups.setdefault((component, name), _Group(component, name))
        group.keys[part] = key
    return groups, unsupported, unmatched


def _parse_key(key: str) -> tuple[Component, str, Part] | None:
    split = _split_part(key)
    if split is None:
        return None
    base, part = split
    for prefix, component, style in _PREFIXES:
        if base.startswith(prefix):
            name = base[len(prefix) :]
            if component != "unet":
                name = strip_text_model(name, "_" if style == "kohya" else ".")
            return component, name, part
    return None


def _split_part(key: str) -> tuple[str, Part] | None:
    for suffix, part in _PARTS:
        if key.endswith(suffix):
            return key[: -len(suffix)], part
    return None


def _adapter_config(metadata: dict[str, str]) -> dict[str, Any]:
    raw = metadata.get(METADATA_KEY)
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def _resolve(
    file: SafetensorsFile,
    groups: dict[tuple[Component, str], _Group],
    modules: dict[Component, torch.nn.Module],
    config: dict[str, Any],
    unmatched: list[str],
) -> tuple[list[LoraLayer], list[str]]:
    """Match each group to a module and read its factors; `unmatched` collects stray keys."""
    indexes = {
        component: unet_index(module) if component == "unet" else text_encoder_index(module)
        for component, module in modules.items()
    }
    layers: list[LoraLayer] = []
    problems: list[str] = []
    for group in groups.values():
        index = indexes.get(group.component, {})
        module_name = index.get(group.name)
        if module_name is None:
            unmatched.extend(group.keys.values())
            continue
        if "up" not in group.keys or "down" not in group.keys:
            missing = "up" if "up" not in group.keys else "down"
            problems.append(f"{_listing(list(group.keys.values()))} has no {missing} factor")
            continue
        weight = modules[group.component].get_parameter(f"{module_name}.weight")
        layer = _read_layer(file, group, module_name, config)
        problem = _shape_problem(layer, group, weight.shape)
        if problem:
            problems.append(problem)
        else:
            layers.append(layer)
    return layers, problems


def _read_layer(
    file: SafetensorsFile, group: _Group, module_name: str, config: dict[str, Any]
) -> LoraLayer:
    up, down = file.read(group.keys["up"]), file.read(group.keys["down"])
    rank = down.shape[0]
    alpha: float | None = None
    if "alpha" in group.keys:
        alpha = float(file.read(group.keys["alpha"]).float().item())
    else:
        alpha = _config_alpha(config, group)
    if alpha is None:
        alpha = float(rank)
    rslora = bool(config.get(f"{group.component}.use_rslora", False))
    scale = alpha / math.sqrt(rank) if rslora else alpha / rank
    return LoraLayer(group.component, module_name, up, down, scale)


def _config_alpha(config: dict[str, Any], group: _Group) -> float | None:
    """PEFT's alpha for one layer: the first `alpha_pattern` entry that matches, else global."""
    patterns = config.get(f"{group.component}.alpha_pattern") or {}
    for pattern, alpha in patterns.items():
        # PEFT matches a pattern against the tail of the dotted module name.
        try:
            matched = re.match(rf"(.*\.)?({pattern})$", group.name) is not None
        except re.error:
            matched = group.name.endswith(pattern)  # not a regex: compare it literally
        if matched:
            return float(alpha)
    alpha = config.get(f"{group.component}.lora_alpha")
    return None if alpha is None else float(alpha)


def _shape_problem(layer: LoraLayer, group: _Group, weight_shape: torch.Size) -> str | None:
    up, down = layer.up, layer.down
    fits = (
        up.ndim == down.ndim
        and up.ndim in (2, 4)
        and up.shape[1] == down.shape[0]
        and all(size == 1 for size in up.shape[2:])
        and _squeeze_tail((up.shape[0], *down.shape[1:])) == _squeeze_tail(tuple(weight_shape))
    )
    if fits:
        return None
    return (
        f"{group.keys['up']!r} {list(up.shape)} and {group.keys['down']!r} {list(down.shape)} "
        f"do not fit {layer.module!r}, whose weight is {list(weight_shape)}"
    )


def _squeeze_tail(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing 1s so a Linear LoRA fits a 1x1 convolution and vice versa."""
    end = len(shape)
    while end > 1 and shape[end - 1] == 1:
        end -= 1
    return shape[:end]
