"""Load a diffusers pipeline folder (model_index.json, unet/, vae/, text_encoder[_2]/).

Each component folder holds `config.json` and its weights as `.safetensors` (one file, an fp16
variant, or shards listed in `*.safetensors.index.json`); pickle `.bin` weights are refused.
The names are already diffusers names, so the streaming loader copies them as they are, except
that text towers are normalised between transformers 4 (`text_model.` prefix) and 5 (none).

The family comes from the folder's structure: SDXL has `text_encoder_2` (the SDXL refiner, whose
pipeline sets `requires_aesthetics_score`, has it alone: bigG, read as the base reads it);
otherwise an OpenCLIP text encoder (`hidden_act` "gelu") means SD 2.x, OpenAI's CLIP-L ("quick_gelu") SD 1.x.
Diffusers' SD 2.x text encoders already stop one layer short (23 of OpenCLIP's 24), so their last
layer is what single files call the penultimate: they are read with `layer="last"`.
Prediction type and noise schedule come from `scheduler/scheduler_config.json` when present.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPTextConfig

from latentloom.models.build import Modules, empty_text_model, empty_unet, empty_vae
from latentloom.models.detect import Detection
from latentloom.models.errors import CheckpointError, PickleCheckpointError
from latentloom.models.family import FAMILIES
from latentloom.models.handles import Checkpoint, PredictionType
from latentloom.models.keymap import Target
from latentloom.models.layout import (
    REFINER_TEXT_TOWERS,
    TEXT_TOWERS,
    Component,
    TextComponent,
    TextTower,
)
from latentloom.models.load import assemble, fill_modules
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.schedule import alphas_cumprod
from latentloom.models.streaming import Transfer
from latentloom.models.weight_dtype import WeightStorage

_WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
_FOLDER_PICKLE_ADVICE = (
    "Latentloom never unpickles weights. Re-save the folder once with "
    "`pipeline.save_pretrained(folder, safe_serialization=True)` in a Python you trust"
)
_PREDICTION_TYPES: dict[str, PredictionType] = {
    "epsilon": "epsilon",
    "v_prediction": "v_prediction",
}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, "missing; a diffusers folder needs it") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(path, f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(path, "must hold a JSON object")
    return data


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files holding one component's weights (shards in index order)."""
    for name in _WEIGHT_NAMES:
        for stem in (name, f"{name}.fp16"):
            index = folder / f"{stem}.safetensors.index.json"
            if index.is_file():
                return _shards(index)
            single = folder / f"{stem}.safetensors"
            if single.is_file():
                return [single]
    pickles = sorted(folder.glob("*.bin"))
    if pickles:
        raise PickleCheckpointError(
            pickles[0], "diffusers folder weights are pickle (.bin)", _FOLDER_PICKLE_ADVICE
        )
    raise CheckpointError(folder, "no .safetensors weights in this component folder")


def _shards(index: Path) -> list[Path]:
    """The shard files an index's `weight_map` names, each a plain name beside the index.

    A shard may be a link (a download cache's layout), but its name may not lead out of the
    folder: `../`, absolute paths and separators are refused, naming the index and the entry.
    """
    weight_map = _read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(index, "weight_map must map tensor names to shard file names")
    shards: list[Path] = []
    for shard in weight_map.values():
        if isinstance(shard, str) and index.parent / shard in shards:
            continue
        if not isinstance(shard, str) or not _plain_shard_name(shard):
            raise CheckpointError(
                index,
                f"weight_map names the shard {str(shard)[:200]!r}; shards must be .safetensors "
                "files beside the index, named without folders",
            )
        path = index.parent / shard
        if not path.is_file():
            raise CheckpointError(index, f"the shard {shard!r} it lists is missing")
        shards.append(path)
    return shards


def _plain_shard_name(name: str) -> bool:
    return (
        name.endswith(".safetensors")
        and not name.startswith(".")
        and not any(char in name for char in "/\\\x00:")
    )


def _scheduler(folder: Path) -> tuple[PredictionType, torch.Tensor]:
    config_path = folder / "scheduler" / "scheduler_config.json"
    if not config_path.is_file():
        return "epsilon", alphas_cumprod()
    config = _read_json(config_path)
    declared = config.get("prediction_type", "epsilon")
    if declared not in _PREDICTION_TYPES:
        raise CheckpointError(
            config_path, f"prediction_type {declared!r} is not supported; use epsilon or v"
        )
    schedule = config.get("beta_schedule", "scaled_linear")
    if schedule not in ("scaled_linear", "linear"):
        raise CheckpointError(config_path, f"beta_schedule {schedule!r} is not supported")
    cumprod = alphas_cumprod(
        schedule,
        float(config.get("beta_start", 0.00085)),
        float(config.get("beta_end", 0.012)),
        int(config.get("num_train_timesteps", 1000)),
    )
    return _PREDICTION_TYPES[declared], cumprod


def _towers(text_configs: dict[TextComponent, CLIPTextConfig]) -> list[TextTower]:
    if "text_encoder" not in text_configs:  # the SDXL refiner: bigG alone
        return list(REFINER_TEXT_TOWERS)
    if "text_encoder_2" in text_configs:
        return list(TEXT_TOWERS["sdxl"])
    if text_configs["text_encoder"].hidden_act == "gelu":
        return [dataclasses.replace(TEXT_TOWERS["sd2"][0], layer="last")]
    return list(TEXT_TOWERS["sd15"])


def _family_name(towers: list[TextTower]) -> str:
    if len(towers) == 2 or towers == list(REFINER_TEXT_TOWERS):
        return "sdxl"
    return "sd2" if towers[0].layout == "open_clip" else "sd15"


def _text_key(key: str, root: str) -> str | None:
    """A saved text-encoder name in this transformers version's layout (None: skip it)."""
    if key.endswith("embeddings.position_ids"):
        return None
    if key == "text_projection.weight":
        return key
    return root + key.removeprefix("text_model.")


def _transfers(files: dict[Component, list[SafetensorsFile]], modules: Modules) -> list[Transfer]:
    roots = modules.text_roots()
    transfers = []
    for component, opened in files.items():
        for file in opened:
            for key in file:
                is_text = component not in ("unet", "vae")
                name = _text_key(key, roots[component]) if is_text else key  # type: ignore[index]
                target = (
                    Target(component, (name,), "copy")
                    if name is not None
                    else Target(component, (), "ignore")
                )
                transfers.append(Transfer(file, key, target))
    return transfers


def _text_configs(folder: Path) -> dict[TextComponent, CLIPTextConfig]:
    configs: dict[TextComponent, CLIPTextConfig] = {}
    for component in ("text_encoder", "text_encoder_2"):
        config_path = folder / component / "config.json"
        # Every pipeline has `text_encoder` except the SDXL refiner's (`text_encoder_2` alone).
        required = component == "text_encoder" and not (folder / "text_encoder_2").is_dir()
        if required or config_path.parent.is_dir():
            configs[component] = CLIPTextConfig.from_dict(_read_json(config_path))
    return configs


def load_diffusers_folder(
    folder: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    vae_dtype: torch.dtype,
    prediction_type: PredictionType | None = None,
    weights: WeightStorage | None = None,
) -> Checkpoint:
    """Load a diffusers pipeline folder; see the module docstring for the rules."""
    _read_json(folder / "model_index.json")
    from latentloom.models.sd3_folder import is_sd3_folder, load_sd3_folder

    if is_sd3_folder(folder):  # an MMDiT in transformer/: SD 3.x (sd3_folder.py)
        return load_sd3_folder(
            folder, device=device, dtype=dtype, vae_dtype=vae_dtype, weights=weights
        )
    text_configs = _text_configs(folder)
    towers = _towers(text_configs)
    declared, schedule = _scheduler(folder)
    detection = Detection(
        family=FAMILIES[_family_name(towers)],
        prediction_type=prediction_type or declared,
        prediction_rule="set by the caller" if prediction_type else "scheduler config",
        variant="refiner" if towers == list(REFINER_TEXT_TOWERS) else "standard",
    )
    with ExitStack() as stack:
        files: dict[Component, list[SafetensorsFile]] = {}
        components: tuple[Component, ...] = ("unet", "vae", *text_configs)
        for component in components:
            paths = weight_files(folder / component)
            files[component] = [stack.enter_context(SafetensorsFile(path)) for path in paths]
        with_projection = {
            component: any("text_projection.weight" in file for file in files[component])
            for component in text_configs
        }
        modules = Modules(
            unet=empty_unet(_read_json(folder / "unet" / "config.json")),
            vae=empty_vae(_read_json(folder / "vae" / "config.json")),
            text=tuple(
                (component, empty_text_model(config, with_projection[component]))
                for component, config in text_configs.items()
            ),
        )
        fill_modules(modules, _transfers(files, modules), folder, device, dtype, vae_dtype, weights)
    return assemble(modules, detection, towers, folder, schedule)
