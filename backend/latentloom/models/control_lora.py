"""Control-LoRA (Stability's `control-lora-*.safetensors`): a ControlNet stored as a diff.

Such a file holds a ControlNet in the original (`cldm`) layout whose encoder weights are
low-rank deltas (`<module>.up` / `<module>.down`) on top of the UNet it is applied to, full
weights for what the UNet lacks (`input_hint_block`, `zero_convs`, `middle_block_out`) and
for the norms and biases, and a `lora_controlnet` marker tensor. So it becomes a ControlNet
only next to a base model: as in ComfyUI, the base is the model being sampled, taken when
sampling starts. Ours: the guided denoiser hands its DiffusionModel to the control applier,
which asks a `ControlLoraSource` for residuals with it; `ControlLoraWeights.controlnet_for`
builds a diffusers ControlNetModel with the UNet's config, copies the UNet's encoder weights
(as they are while sampling, LoRA weight patches included, as ComfyUI's), then the file's full
weights, then adds `up @ down` (in float32, cast once) to every weight that has a pair. The
built ControlNet is kept for the last base model only (it is as large as a ControlNet).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from latentloom.models.controlnet_keys import (
    CONTROLNET_CONFIG_KEYS,
    controlnet_keymap,
    controlnet_to_diffusers,
    hint_levels,
)
from latentloom.models.controlnet_source import ControlModel, ControlNetSource, check_family
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES, Family
from latentloom.models.handles import ControlCall, ControlResiduals
from latentloom.models.safetensors_file import SafetensorsFile

if TYPE_CHECKING:
    from latentloom.models.handles import DiffusionModel

CONTROL_LORA_MARKER = "lora_controlnet"
_PAIR = (".up", ".down")


def is_control_lora(keys: set[str] | list[str]) -> bool:
    return CONTROL_LORA_MARKER in keys


@dataclass(frozen=True, eq=False)
class ControlLoraWeights:
    """The file's tensors (original names) and the ControlNet last built from them."""

    tensors: dict[str, Tensor]
    source: str
    _built: list[tuple[Any, nn.Module]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def config(self) -> SimpleNamespace:
        """What `check_family` reads of a ControlNet's config: its text width."""
        return SimpleNamespace(cross_attention_dim=_context_width(self.tensors))

    def parameters(self) -> Any:
        return iter(self.tensors.values())

    def controlnet_for(self, model: DiffusionModel) -> nn.Module:
        """The ControlNet this file makes on `model`'s UNet (built once per base model)."""
        with self._lock:
            if self._built and self._built[0][0] is model:
                return self._built[0][1]
            self._built.clear()  # free the previous one before building the next
            built = build_controlnet(self.tensors, model, self.source)
            self._built.append((model, built))
            return built


def load_control_lora(
    file: SafetensorsFile, source: Path, device: torch.device, dtype: torch.dtype
) -> ControlModel:
    """A CONTROL_NET holding a Control-LoRA's tensors (built on a UNet when sampling)."""
    tensors = {
        key: file.read(key).to(device)
        for key in file
        # What ComfyUI reads of these files: parameters and pairs, no "__" bookkeeping keys.
        if key.endswith((*_PAIR, ".weight", ".bias")) and "__" not in key
    }
    for key in list(tensors):
        if not key.endswith(_PAIR):
            tensors[key] = tensors[key].to(dtype)
    if "input_hint_block.0.weight" not in tensors:
        raise UnrecognizedCheckpointError(
            source,
            "Control-LoRA without 'input_hint_block.0.weight': the file has the "
            f"'{CONTROL_LORA_MARKER}' marker but no hint encoder",
        )
    weights = ControlLoraWeights(tensors, str(source))
    family = control_lora_family(tensors)
    return ControlModel(
        cast(Any, weights), "control_lora", family, str(source), "Control-LoRA, original layout"
    )


def control_lora_family(tensors: dict[str, Tensor]) -> Family:
    if any(key.startswith("label_emb.") for key in tensors):
        return FAMILIES["sdxl"]
    return FAMILIES["sd2" if _context_width(tensors) == 1024 else "sd15"]


def _context_width(tensors: dict[str, Tensor]) -> int | None:
    for key, tensor in tensors.items():
        if key.endswith(("attn2.to_k.down", "attn2.to_k.weight")):
            return int(tensor.shape[1])
    return None


def build_controlnet(tensors: dict[str, Tensor], model: DiffusionModel, source: str) -> nn.Module:
    """A diffusers ControlNetModel: `model`'s UNet encoder + the file's weights and deltas."""
    from diffusers import ControlNetModel

    unet: Any = model.unet
    if not hasattr(unet, "down_blocks"):
        raise ValueError(
            f"Control-LoRA {source} needs a UNet model (SD 1.x, SD 2.x or SDXL) to build on; "
            f"{model.source} is {model.family.display_name}"
        )
    config = {k: unet.config[k] for k in CONTROLNET_CONFIG_KEYS if k in unet.config}
    widths = hint_levels(tensors)
    config["conditioning_channels"] = int(tensors["input_hint_block.0.weight"].shape[1])
    config["conditioning_embedding_out_channels"] = [
        int(tensors[f"input_hint_block.{4 * level if level else 0}.weight"].shape[0])
        for level in range(widths)
    ]
    keymap = controlnet_keymap(
        model.family, int(config["layers_per_block"]), len(config["block_out_channels"])
    )
    parameter = next(unet.parameters())
    with torch.device("meta"):
        module = cast(nn.Module, ControlNetModel(**config))
    wanted = module.state_dict()
    state = {
        name: tensor.detach().to(parameter.dtype, copy=True)
        for name, tensor in unet.state_dict().items()
        if name in wanted
    }
    pairs: dict[str, dict[str, Tensor]] = {}
    for key, tensor in tensors.items():
        stem, _, suffix = key.rpartition(".")
        paired = suffix in ("up", "down")
        name = controlnet_to_diffusers(f"{stem}.weight" if paired else key, keymap, widths)
        if name is None or name not in wanted:
            raise UnrecognizedCheckpointError(
                source, f"Control-LoRA key {key!r} has no place in a ControlNet of {model.source}"
            )
        if suffix in ("up", "down"):
            pairs.setdefault(name, {})[suffix] = tensor
        else:
            state[name] = tensor.to(parameter.device, parameter.dtype)
    for name, pair in pairs.items():
        state[name] = _with_delta(state[name], pair, source, name)
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise UnrecognizedCheckpointError(
            source, f"Control-LoRA leaves {len(missing)} ControlNet weights unset: {missing[:3]}"
        )
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)


def _with_delta(weight: Tensor, pair: dict[str, Tensor], source: str, name: str) -> Tensor:
    if set(pair) != {"up", "down"}:
        raise UnrecognizedCheckpointError(source, f"Control-LoRA {name}: 'up' without 'down'")
    up, down = (
        pair["up"].to(weight.device, torch.float32),
        pair["down"].to(weight.device, torch.float32),
    )
    delta = (up.flatten(start_dim=1) @ down.flatten(start_dim=1)).reshape(weight.shape)
    return (weight.to(torch.float32) + delta).to(weight.dtype)


@dataclass(frozen=True, eq=False)
class ControlLoraSource(ControlNetSource):
    """A Control-LoRA with its control image; residuals need the model being sampled."""

    def residuals(self, call: ControlCall) -> ControlResiduals:
        raise ValueError(
            f"Control-LoRA {self.model.source} is built on the model being sampled, and this "
            "UNet call came without one; sample through KSampler / SamplerCustom"
        )

    def residuals_on(self, call: ControlCall, base: DiffusionModel) -> ControlResiduals:
        check_family(self.model, call)
        weights = cast(ControlLoraWeights, self.model.module)
        return self.run(weights.controlnet_for(base), call)
