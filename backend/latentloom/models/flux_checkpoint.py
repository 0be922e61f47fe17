"""All-in-one FLUX.1 checkpoints through Load Checkpoint.

Some FLUX files carry everything, as ComfyUI saves them (and Comfy-Org's `flux1-dev-fp8` /
`flux1-schnell-fp8` are published): the transformer under `model.diffusion_model.` in Black
Forest Labs' names, CLIP-L under `text_encoders.clip_l.transformer.`, T5-XXL under
`text_encoders.t5xxl.transformer.`, and the AE under `vae.` or `first_stage_model.`. Each part
is the same tensors a separate file holds under a prefix, so each is read by the loader of its
separate file, which already finds its part by prefix in a file holding others: the transformer
by `flux_model.load_flux_unet`, the AE by Load VAE's `vae_file.load_vae` (as FLUX's: the file
says it is FLUX), CLIP-L and T5 by the Dual CLIP Loader's tower and T5 builders. The file is
opened once per part; safetensors maps it, so nothing is read twice.

The AE is required (a checkpoint without one is a transformer file: Load Diffusion Model reads
those); the text encoders are taken as present, as users strip them to save space.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import torch

from latentloom.models.component_load import _tower_file
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FLUX
from latentloom.models.flux_keys import FLUX_PREFIX, flux_prefix
from latentloom.models.flux_model import load_flux_unet
from latentloom.models.handles import Checkpoint, ClipTextEncoder, T5TextEncoder, TextEncoders
from latentloom.models.layout import SD3_CLIP_L_PREFIX, SD3_T5_PREFIX
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.t5_clip_load import _clip_tower
from latentloom.models.t5_encoder import build_t5_encoder, t5_text_encoder
from latentloom.models.vae_file import load_vae
from latentloom.models.weight_dtype import WeightStorage

CLIP_L_PREFIX = SD3_CLIP_L_PREFIX  # `text_encoders.clip_l.transformer.`, as in SD 3 files
T5_PREFIX = SD3_T5_PREFIX  # `text_encoders.t5xxl.transformer.`
VAE_PREFIXES = ("vae.", "first_stage_model.")


def is_flux_checkpoint(keys: Collection[str]) -> bool:
    """A FLUX transformer under the checkpoint prefix (a bare transformer file is not one)."""
    return flux_prefix(keys) == FLUX_PREFIX


def load_flux_checkpoint(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    vae_dtype: torch.dtype,
    weights: WeightStorage | None = None,
) -> Checkpoint:
    """Every part of an all-in-one FLUX.1 file (see the module docstring); `weights`: how the
    transformer stores and computes (CLIP-L and T5 are held in its compute dtype), None: all
    in `dtype`."""
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        keys = file.keys()
        if not any(key.startswith(VAE_PREFIXES) for key in keys):
            raise UnrecognizedCheckpointError(
                path,
                "a FLUX.1 transformer without its AE (no vae.* or first_stage_model.* tensors)",
                "Put the file in diffusion_models/ and load it with Load Diffusion Model, the "
                "AE with Load VAE and the text encoders with Dual CLIP Loader (type flux)",
            )
        encoders: list[ClipTextEncoder | T5TextEncoder] = []
        if any(key.startswith(CLIP_L_PREFIX) for key in keys):
            # The one token embedding in the file is CLIP-L's (T5 names its `shared`).
            tower = _tower_file(file, path)
            text_dtype = dtype if weights is None else weights.compute
            encoders.append(_clip_tower(file, tower, "clip_l", "flux", device, text_dtype))
        has_t5 = any(key.startswith(T5_PREFIX) for key in keys)
    if has_t5:
        t5_dtype = dtype if weights is None else weights.compute
        t5 = build_t5_encoder(path, T5_PREFIX, device=device, dtype=t5_dtype)
        encoders.append(t5_text_encoder(t5, "flux"))
    model = load_flux_unet(path, device=device, dtype=weights or dtype)
    vae = load_vae(path, device=device, dtype=vae_dtype, family="flux").vae
    clip = TextEncoders(family=FLUX, encoders=tuple(encoders), source=str(path))
    return Checkpoint(model=model, clip=clip, vae=vae)
