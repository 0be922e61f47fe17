"""Load an SD 3.x transformer saved on its own (Load Diffusion Model, `diffusion_models/`).

Users keep SD 3.5 split as FLUX is: the MMDiT in `diffusion_models/` (or `unet/`), the text
encoders beside it (Triple CLIP Loader) and the 16-channel VAE (Load VAE). The file holds the
checkpoint's transformer tensors either under `model.diffusion_model.` (a checkpoint with the
rest taken out, or ComfyUI's ModelSave) or with that prefix removed (bare MMDiT names, as
Stability's and ComfyUI's split files have them); diffusers' own transformer layout
(`transformer_blocks.*`) is the diffusers folder's, which Load Checkpoint reads.

The names are put back under the checkpoint prefix, so the single-file machinery reads them as
it reads a checkpoint: `sd3_config.transformer_config` derives the config from shapes,
`sd3_keys.Sd3KeyMap` maps every name (rehearsed before a byte is read), and the tensors stream
into the meta-built module in the chosen weight storage. The model samples as rectified flow
with SD 3's shift 3 (`sd3_load.sd3_diffusion_model`), as the checkpoint would.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.handles import DiffusionModel
from latentloom.models.layout import UNET_PREFIX, Component
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.sd3_config import describe, empty_transformer, transformer_config
from latentloom.models.sd3_keys import SD3_MARKER, Sd3KeyMap, sd3_transformer_prefix
from latentloom.models.sd3_load import sd3_diffusion_model
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream
from latentloom.models.weight_dtype import WeightStorage


def load_sd3_unet(
    path: Path, *, device: torch.device, dtype: torch.dtype | WeightStorage
) -> DiffusionModel:
    """An SD 3.x transformer file as a MODEL handle; `dtype`: a dtype or a weight storage."""
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        prefix = sd3_transformer_prefix(file.keys())
        if prefix is None:
            raise UnrecognizedCheckpointError(
                path,
                f"not an SD 3.x transformer: expected {SD3_MARKER.removeprefix(UNET_PREFIX)} "
                "(bare or under model.diffusion_model.)",
            )
        # Checkpoint name -> file key; a checkpoint's other components (VAE, text) stay out.
        names = {UNET_PREFIX + key[len(prefix) :]: key for key in file if key.startswith(prefix)}
        shapes = {name: file.shape(key) for name, key in names.items()}
        config = transformer_config(shapes, path)
        keymap = Sd3KeyMap(config["num_layers"])
        transfers = [
            Transfer(file, key, target)
            for name, key in names.items()
            if (target := keymap.to_diffusers(name[len(UNET_PREFIX) :])) is not None
        ]
        transformer = empty_transformer(config)
        fillers: dict[Component, ModuleFiller] = {
            "unet": ModuleFiller("unet", cast(nn.Module, transformer))
        }
        rehearse(transfers, fillers, path)
        stream(transfers, fillers, device, {"unet": dtype})
        rule = describe(config, file.metadata)
    return sd3_diffusion_model(transformer, str(path), rule)
