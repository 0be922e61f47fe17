"""Load a checkpoint (single `.safetensors` file or diffusers folder) into the link handles.

Single file: validate the header (`safetensors_file.py`), detect the family and prediction type
(`detect.py`), derive every config from tensor shapes (`configs.py`), build the modules on the
meta device (`build.py`), rehearse the whole name mapping (`keymap.py`) so that any mismatch is
reported before a byte of weights is read, then stream tensor by tensor into the modules
(`streaming.py`). Diffusers folders take the same path with their own configs and names
(`diffusers_folder.py`). Pickle checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from latentloom.models import weight_prefetch
from latentloom.models.build import Modules, TextModel, empty_modules
from latentloom.models.configs import derive_configs
from latentloom.models.detect import Detection, detect
from latentloom.models.device import VAE_DTYPE, choose_device, choose_dtype
from latentloom.models.errors import CheckpointError
from latentloom.models.handles import (
    Checkpoint,
    ClipTextEncoder,
    DiffusionModel,
    PredictionType,
    TextEncoders,
    Vae,
)
from latentloom.models.keymap import KeyMap
from latentloom.models.layout import Component, TextTower
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.schedule import alphas_cumprod
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream
from latentloom.models.weight_dtype import WeightStorage


def load_checkpoint(
    path: str | Path,
    *,
    device: torch.device | str | None,
    dtype: torch.dtype | str | None,
    vae_dtype: torch.dtype = VAE_DTYPE,
    prediction_type: PredictionType | None = None,
    weights: WeightStorage | None = None,
) -> Checkpoint:
    """Load every component.

    `device`/`dtype` None choose automatically (`device.py`); `prediction_type` overrides
    detection (`detect.py`), whose type and reason the rule then still records. `weights`: how
    the UNet and text encoders store and compute (`weight_dtype.py`); None: all in `dtype`.
    """
    source = Path(path)
    device = device if isinstance(device, torch.device) else choose_device(device)
    dtype = choose_dtype(device, dtype)
    if source.is_dir():
        from latentloom.models.diffusers_folder import load_diffusers_folder

        return load_diffusers_folder(
            source,
            device=device,
            dtype=dtype,
            vae_dtype=vae_dtype,
            prediction_type=prediction_type,
            weights=weights,
        )
    refuse_pickle_path(source)
    if not source.is_file():
        raise CheckpointError(source, "no such file or folder")
    with SafetensorsFile(source) as file:
        from latentloom.models.sd3_keys import is_sd3

        if is_sd3(file.keys()):
            from latentloom.models.sd3_load import load_sd3_file

            return load_sd3_file(
                source, device=device, dtype=dtype, vae_dtype=vae_dtype, weights=weights
            )
        # The key check alone (flux_keys has no heavy imports): flux_checkpoint imports T5's
        # model from transformers, which an SD file never needs.
        from latentloom.models.flux_keys import FLUX_PREFIX, flux_prefix

        if flux_prefix(file.keys()) == FLUX_PREFIX:  # all-in-one FLUX.1 (flux_checkpoint.py)
            from latentloom.models.flux_checkpoint import load_flux_checkpoint

            return load_flux_checkpoint(
                source, device=device, dtype=dtype, vae_dtype=vae_dtype, weights=weights
            )
        detection = overridden(
            detect(file.keys(), file.metadata, source, weights=file), prediction_type
        )
        configs = derive_configs(file.shapes(), detection, source)
        modules = empty_modules(configs)
        towers = tuple(item.tower for item in configs.text_encoders)
        keymap = KeyMap(detection.family, configs.unet, configs.vae, modules.text_roots(), towers)
        transfers = [
            Transfer(file, key, target)
            for key in file
            if (target := keymap.to_diffusers(key)) is not None
        ]
        with weight_prefetch.claimed(file):  # tensors converted while the stack imported
            fill_modules(modules, transfers, source, device, dtype, vae_dtype, weights)
    return assemble(modules, detection, towers, source)


def overridden(detection: Detection, prediction_type: PredictionType | None) -> Detection:
    """The caller's prediction type, if any, with what detection found kept in the rule."""
    if prediction_type is None:
        return detection
    found = f"detected {detection.prediction_type}: {detection.prediction_rule}"
    return dataclasses.replace(
        detection, prediction_type=prediction_type, prediction_rule=f"set by the caller ({found})"
    )


def fill_modules(
    modules: Modules,
    transfers: Sequence[Transfer],
    source: Path,
    device: torch.device,
    dtype: torch.dtype,
    vae_dtype: torch.dtype,
    weights: WeightStorage | None = None,
) -> None:
    """Rehearse, then stream `transfers` into the meta-built `modules`."""
    components = modules.components()
    fillers = {name: ModuleFiller(name, module) for name, module in components.items()}
    rehearse(transfers, fillers, source)
    dtypes: dict[Component, torch.dtype | WeightStorage] = {
        name: vae_dtype if name == "vae" else (weights or dtype) for name in components
    }
    stream(transfers, fillers, device, dtypes)


def _text_encoder(model: TextModel, tower: TextTower) -> ClipTextEncoder:
    # Imported here: the text package imports model handles, and most of this package's users
    # (tests of shapes and names) never need a tokenizer.
    from latentloom.text.tokenizer import clip_tokenizer

    return ClipTextEncoder(
        model=model,
        tokenizer=clip_tokenizer(tower.pad_token),
        layer=tower.layer,
        final_norm_on_penultimate=tower.final_norm_on_penultimate,
        pad_token_id=tower.pad_token_id,
    )


def assemble(
    modules: Modules,
    detection: Detection,
    towers: Sequence[TextTower],
    source: Path,
    schedule: torch.Tensor | None = None,
) -> Checkpoint:
    """Wrap loaded modules in the frozen handles that travel along graph links."""
    family = detection.family
    models = dict(modules.text)
    encoders = tuple(_text_encoder(models[tower.component], tower) for tower in towers)
    return Checkpoint(
        model=DiffusionModel(
            unet=modules.unet,
            family=family,
            prediction_type=detection.prediction_type,
            alphas_cumprod=alphas_cumprod() if schedule is None else schedule,
            source=str(source),
            prediction_rule=detection.prediction_rule,
        ),
        clip=TextEncoders(family=family, encoders=encoders, source=str(source)),
        vae=Vae(module=modules.vae, family=family, source=str(source)),
    )
