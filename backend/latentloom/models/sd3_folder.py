"""Load an SD 3.x diffusers pipeline folder (transformer/, vae/, text_encoder[_2,_3]/).

The names are already diffusers / transformers names, so each component streams as it is
into its meta-built module (configs from each `config.json`), after the same rehearsal as
single files. The text encoders are each optional, as in single files: CLIP-L in
`text_encoder/`, CLIP-G in `text_encoder_2/` (both with projections), T5 in `text_encoder_3/`
(built by `t5_encoder.py`, shards included). Tokenizer folders are ignored: the CLIP and T5
vocabularies ship with Latentloom. Weights must be `.safetensors`; pickles are refused.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from transformers import CLIPTextConfig

from latentloom.models.build import TextModel, empty_text_model, empty_vae
from latentloom.models.diffusers_folder import weight_files
from latentloom.models.errors import CheckpointError
from latentloom.models.handles import Checkpoint
from latentloom.models.keymap import Target
from latentloom.models.layout import SD3_TEXT_G, SD3_TEXT_L, Component, TextTower
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.sd3_config import describe, empty_transformer
from latentloom.models.sd3_load import SD3_T5_MIN_LENGTH, assemble_sd3, clip_encoder
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream
from latentloom.models.weight_dtype import WeightStorage

SD3_TRANSFORMER_CLASS = "SD3Transformer2DModel"
_CLIP_FOLDERS: tuple[tuple[str, TextTower], ...] = (
    ("text_encoder", SD3_TEXT_L),
    ("text_encoder_2", SD3_TEXT_G),
)


def _config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, "missing; an SD 3 diffusers folder needs it") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(path, f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(path, "must hold a JSON object")
    return {key: value for key, value in data.items() if not key.startswith("_")}


def is_sd3_folder(folder: Path) -> bool:
    """A pipeline folder whose transformer is diffusers' SD 3 MMDiT."""
    config = folder / "transformer" / "config.json"
    try:
        return bool(
            json.loads(config.read_text("utf-8")).get("_class_name") == SD3_TRANSFORMER_CLASS
        )
    except (OSError, ValueError, AttributeError):
        return False


def load_sd3_folder(
    folder: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    vae_dtype: torch.dtype,
    weights: WeightStorage | None = None,
) -> Checkpoint:
    """Every component the folder holds (text encoders as present)."""
    transformer_config = _config(folder / "transformer" / "config.json")
    transformer = empty_transformer(transformer_config)
    vae = empty_vae(_config(folder / "vae" / "config.json"))
    clips: dict[TextTower, TextModel] = {}
    for name, tower in _CLIP_FOLDERS:
        if (folder / name / "config.json").is_file():
            config = CLIPTextConfig.from_dict(_config(folder / name / "config.json"))
            clips[tower] = empty_text_model(config, with_projection=True)
    components: dict[Component, nn.Module] = {
        "unet": cast(nn.Module, transformer),
        "vae": cast(nn.Module, vae),
    }
    components.update({tower.component: model for tower, model in clips.items()})
    subfolders: dict[Component, str] = {"unet": "transformer", "vae": "vae"}
    with ExitStack() as stack:
        transfers = []
        for component in components:
            for path in weight_files(folder / subfolders.get(component, component)):
                file = stack.enter_context(SafetensorsFile(path))
                for key in file:
                    ignored = key.endswith("position_ids")  # a constant some files carry
                    keys = () if ignored else (key,)
                    transfers.append(
                        Transfer(
                            file, key, Target(component, keys, "ignore" if ignored else "copy")
                        )
                    )
        fillers = {name: ModuleFiller(name, module) for name, module in components.items()}
        rehearse(transfers, fillers, folder)
        model_dtype: torch.dtype | WeightStorage = dtype if weights is None else weights
        dtypes = {name: vae_dtype if name == "vae" else model_dtype for name in components}
        stream(transfers, fillers, device, dtypes)
    encoders: list[Any] = [clip_encoder(model, tower) for tower, model in clips.items()]
    if (folder / "text_encoder_3").is_dir():
        encoders.append(_t5_folder(folder / "text_encoder_3", device, dtype))
    rule = describe(transformer_config, {"folder": folder.name})
    return assemble_sd3(transformer, vae, tuple(encoders), str(folder), rule)


def _t5_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> Any:
    from latentloom.models.handles import T5TextEncoder
    from latentloom.models.t5_encoder import build_t5_encoder
    from latentloom.text.t5_tokenizer import t5_tokenizer

    model = build_t5_encoder(folder, device=device, dtype=dtype)
    return T5TextEncoder(model=model, tokenizer=t5_tokenizer(), min_length=SD3_T5_MIN_LENGTH)
