"""Load a standalone VAE (Load VAE): a single `.safetensors` file or a diffusers VAE folder.

Single files come in two layouts, told apart by their names:
- original (LDM): `encoder.down.0.block.0...`, as in checkpoints, with or without the
  `first_stage_model.` prefix. The config is derived from the shapes (`configs.vae_config`)
  and the names mapped by the checkpoint key map (`keymap.py`), so a VAE file loads exactly as
  the same tensors inside a checkpoint would;
- diffusers: `encoder.down_blocks.0.resnets.0...` (a `vae/diffusion_pytorch_model.safetensors`
  copied out of its folder), including the older attention names `query`/`key`/`value`/
  `proj_attn`; the config is read from the shapes the same way.
A diffusers folder (`config.json` beside `diffusion_pytorch_model[.fp16].safetensors`) is
built from its config. Tensors stream into meta-built modules after a rehearsal, as
checkpoints do (`streaming.py`); pickle files are refused, never unpickled.

Which family's latent scale (SD 1.x/2.x 0.18215, SDXL 0.13025) the VAE uses cannot be read
from the weights: the SD 1.x and SDXL VAEs have the same structure. `family` says it: "sd1"
or "sdxl", or "auto", which takes a diffusers config's `scaling_factor` (folders) and
otherwise assumes SD 1.x, saying so in the rule the Load VAE node reports.

16-channel VAEs (SD 3's, FLUX.1's `ae.safetensors`) have no quant convs and again one
structure for two families (scale and shift 1.5305 / 0.0609 vs 0.3611 / 0.1159). "auto"
assumes FLUX there, the one whose users load the VAE as a separate file (SD 3.5 checkpoints
carry theirs); "sd3" / "flux" choose. Decoding a sampled latent follows the model that made it
anyway (`vae.decode` takes the latent's family), so the choice matters for VAE Encode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import nn

from latentloom.models.build import empty_vae
from latentloom.models.configs import norm_groups, vae_config
from latentloom.models.detect import Detection
from latentloom.models.diffusers_folder import weight_files
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FLUX, SD3, SD15, SDXL, Family
from latentloom.models.handles import Vae
from latentloom.models.keymap import KeyMap, Target
from latentloom.models.layout import VAE_PREFIX
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.sd3_config import vae_config as sd3_vae_config
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream

VaeFamily = Literal["auto", "sd1", "sdxl", "sd3", "flux"]
VAE_FAMILIES: dict[str, Family | None] = {
    "auto": None,
    "sd1": SD15,
    "sdxl": SDXL,
    "sd3": SD3,
    "flux": FLUX,
}
_BY_SCALE = {family.vae_scaling_factor: family for family in (SD15, SDXL, SD3, FLUX)}
_PREFIXES = ("first_stage_model.", "vae.")
_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
# Older diffusers releases named the mid-block attention like this.
_OLD_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
ASSUMED = "no config says which: SD 1.x's latent scale 0.18215 assumed; choose sdxl for an SDXL VAE"
ASSUMED_16 = (
    "16 latent channels and no config: FLUX.1's scale 0.3611 and shift 0.1159 assumed (SD 3's VAE "
    "has the same structure: choose sd3 for it); a sampled latent decodes in its model's family"
)


@dataclass(frozen=True)
class LoadedVae:
    vae: Vae
    family_rule: str  # why this latent scale, for the node's report


def load_vae(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    family: VaeFamily = "auto",
) -> LoadedVae:
    """The VAE in `path` (a file or a diffusers VAE folder) as a VAE handle."""
    if family not in VAE_FAMILIES:
        raise ValueError(f"family {family!r} is not one of: {', '.join(VAE_FAMILIES)}")
    chosen = VAE_FAMILIES[family]
    if path.is_dir():
        return _load_folder(path, device, dtype, chosen)
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        names = _vae_names(file.keys(), path)
        shapes = {name: file.shape(key) for key, name in names.items()}
        wide = _latent_channels(shapes) == FLUX.latent_channels
        resolved = chosen or (FLUX if wide else SD15)
        rule = f"set to {resolved.display_name}" if chosen else ASSUMED_16 if wide else ASSUMED
        if any(name.startswith("encoder.down.") for name in names.values()):
            config = _original_config(shapes, resolved, path)
            targets = _original_targets(names, config)
        else:
            config = _diffusers_config(shapes, resolved, path)
            targets = {key: _diffusers_target(name) for key, name in names.items()}
        module = _filled(file, targets, config, path, device, dtype)
    return LoadedVae(Vae(module=module, family=resolved, source=str(path)), rule)


def _vae_names(keys: list[str], path: Path) -> dict[str, str]:
    """File key -> name without a checkpoint prefix, for the VAE's own tensors only."""
    prefix = next((p for p in _PREFIXES if any(key.startswith(p) for key in keys)), "")
    names = {
        key: key[len(prefix) :]
        for key in keys
        if key.startswith(prefix) and key[len(prefix) :].startswith(_PARTS)
    }
    if not any(
        name.startswith(("encoder.down.", "encoder.down_blocks.")) for name in names.values()
    ):
        shown = ", ".join(sorted(keys)[:6]) or "no tensors"
        raise UnrecognizedCheckpointError(
            path,
            "not a VAE: expected encoder.down.* (original layout) or encoder.down_blocks.* "
            f"(diffusers layout), optionally under first_stage_model.; found {shown}",
        )
    return names


def _latent_channels(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """What the decoder takes in (both layouts name its first conv `decoder.conv_in`)."""
    shape = shapes.get("decoder.conv_in.weight")
    return shape[1] if shape is not None and len(shape) == 4 else None


def _quant_convs(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """SD 3's and FLUX's VAEs have no quant convs; the latent width is then the decoder's."""
    if "post_quant_conv.weight" in shapes:
        return {"latent_channels": shapes["post_quant_conv.weight"][0]}
    return {
        "latent_channels": _latent_channels(shapes),
        "use_quant_conv": "quant_conv.weight" in shapes,
        "use_post_quant_conv": False,
    }


_HAVE_CHANNELS = {4: "SD 1.x, SD 2.x and SDXL", 16: "SD 3.x and FLUX.1"}


def _family_config(config: dict[str, Any], family: Family, path: Path) -> dict[str, Any]:
    if config["latent_channels"] != family.latent_channels:
        raise UnrecognizedCheckpointError(
            path,
            f"a VAE with {config['latent_channels']} latent channels; "
            f"{_HAVE_CHANNELS[family.latent_channels]} VAEs have {family.latent_channels}",
            "Choose the VAE's family on the node (auto tells 4 from 16 channels)",
        )
    shift = {"shift_factor": family.vae_shift_factor} if family.vae_shift_factor else {}
    return {**config, "scaling_factor": family.vae_scaling_factor, **shift}


def _original_config(
    shapes: Mapping[str, tuple[int, ...]], family: Family, path: Path
) -> dict[str, Any]:
    prefixed = {VAE_PREFIX + name: shape for name, shape in shapes.items()}
    if "post_quant_conv.weight" not in shapes:  # SD 3's / FLUX's structure
        return _family_config(sd3_vae_config(shapes, path, prefix=""), family, path)
    detection = Detection(family=family, prediction_type="epsilon", prediction_rule="")
    return _family_config(vae_config(prefixed, detection, path), family, path)


def _original_targets(names: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Target]:
    # Only the VAE half of the checkpoint key map is consulted; the UNet and text parts of its
    # configuration do not matter here, nor does the family (VAE names are the same in all).
    keymap = KeyMap(SD15, {"layers_per_block": 1, "up_block_types": []}, config, {})
    targets = {}
    for key, name in names.items():
        target = keymap.to_diffusers(VAE_PREFIX + name)
        if target is not None:
            targets[key] = target
    return targets


def _indices(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> list[int]:
    found = {name[len(prefix) :].split(".", 1)[0] for name in shapes if name.startswith(prefix)}
    return sorted(int(head) for head in found if head.isdigit())


def _diffusers_config(
    shapes: Mapping[str, tuple[int, ...]], family: Family, path: Path
) -> dict[str, Any]:
    """The config `configs.vae_config` derives from original names, from diffusers names."""

    def shape(name: str) -> tuple[int, ...]:
        if name not in shapes:
            raise UnrecognizedCheckpointError(path, f"missing tensor '{name}' of a diffusers VAE")
        return shapes[name]

    levels = _indices(shapes, "encoder.down_blocks.")
    channels = [shape(f"encoder.down_blocks.{i}.resnets.0.conv1.weight")[0] for i in levels]
    config = {
        "sample_size": 1024 if family is SDXL else 512,
        "in_channels": shape("encoder.conv_in.weight")[1],
        "out_channels": shape("decoder.conv_out.weight")[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(channels),
        "up_block_types": ["UpDecoderBlock2D"] * len(channels),
        "block_out_channels": channels,
        "layers_per_block": len(_indices(shapes, "encoder.down_blocks.0.resnets.")),
        "norm_num_groups": norm_groups(channels),
        **_quant_convs(shapes),
    }
    return _family_config(config, family, path)


def _diffusers_target(name: str) -> Target:
    owner, _, param = name.rpartition(".")
    module, _, leaf = owner.rpartition(".")
    if ".attentions." in owner and leaf in _OLD_ATTENTION:
        name = f"{module}.{_OLD_ATTENTION[leaf]}.{param}"
    attention = ".attentions.0.to_" in name and name.endswith(".weight")
    # A 1x1 conv copy of an attention weight is reshaped to the linear layer's shape.
    return Target("vae", (name,), "conv1x1" if attention else "copy")


def _filled(
    file: SafetensorsFile,
    targets: Mapping[str, Target],
    config: Mapping[str, Any],
    path: Path,
    device: torch.device,
    dtype: torch.dtype,
) -> Any:
    module = empty_vae(config)
    filler = ModuleFiller("vae", cast(nn.Module, module))
    transfers = [Transfer(file, key, target) for key, target in targets.items()]
    rehearse(transfers, {"vae": filler}, path)
    stream(transfers, {"vae": filler}, device, {"vae": dtype})
    return module


def _load_folder(
    folder: Path, device: torch.device, dtype: torch.dtype, chosen: Family | None
) -> LoadedVae:
    import json

    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnrecognizedCheckpointError(
            config_path, f"cannot be read as JSON ({error})"
        ) from None
    if not isinstance(config, dict):
        raise UnrecognizedCheckpointError(config_path, "must hold a JSON object")
    scale = config.get("scaling_factor")
    if chosen is not None:
        family, rule = chosen, f"set to {chosen.display_name}"
    elif scale in _BY_SCALE:
        family = _BY_SCALE[scale]
        rule = f"config.json scaling_factor {scale}: {family.display_name}"
    else:
        raise UnrecognizedCheckpointError(
            config_path,
            f"scaling_factor {scale!r} is none of SD 1.x's 0.18215, SDXL's 0.13025, SD 3's "
            "1.5305 or FLUX.1's 0.3611",
            "Choose the family (sd1, sdxl, sd3 or flux) on the node",
        )
    files = weight_files(folder)
    if len(files) != 1:  # VAEs are a few hundred MB: nobody shards them
        raise UnrecognizedCheckpointError(folder, f"a VAE folder in {len(files)} shards")
    with SafetensorsFile(files[0]) as file:
        targets = {key: Target("vae", (key,), "copy") for key in file}
        config = {key: value for key, value in config.items() if not key.startswith("_")}
        module = _filled(
            file, targets, _family_config(config, family, folder), folder, device, dtype
        )
    return LoadedVae(Vae(module=module, family=family, source=str(folder)), rule)
