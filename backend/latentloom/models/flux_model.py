"""FLUX.1 as a MODEL handle: the transformer, its model sampling and its network call.

Which FLUX it is comes from the weights: a guidance embedder (`guidance_in`) is dev, the
guidance-distilled model; none is schnell. The model sampling is ComfyUI's default for each
(its `supported_models` Flux / FluxSchnell): dev samples with FLUX's 10,000-entry schedule at
a fixed mu of 1.15 (shift exp(1.15) = 3.158, the value `flux_mu` gives at 1024x1024; the
ModelSamplingFlux node sets the resolution-dependent one); schnell with plain rectified flow
(shift 1, 1000 entries), timestep = sigma in both. `load_flux_unet` reads a transformer file
as users keep it in `diffusion_models/` or `unet/`, with or without the checkpoint prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FLUX
from latentloom.models.flux_call import FluxCall
from latentloom.models.flux_keys import FLUX_TELL_TALES, flux_prefix
from latentloom.models.flux_load import load_flux_transformer
from latentloom.models.handles import DiffusionModel
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.schedule import alphas_cumprod
from latentloom.models.weight_dtype import WeightStorage
from latentloom.sampling.model_sampling import (
    FLOW_TIMESTEPS,
    FLUX_MAX_SHIFT,
    FlowSampling,
    flux_sampling,
)

if TYPE_CHECKING:
    from diffusers import FluxTransformer2DModel

DEV_RULE = "a guidance embedder (guidance_in): FLUX.1 dev, guidance-distilled"
SCHNELL_RULE = "no guidance embedder (guidance_in): FLUX.1 schnell"


def default_flux_sampling(guidance_embeds: bool) -> FlowSampling:
    """ComfyUI's defaults: dev mu 1.15 on 10,000 entries; schnell shift 1 on 1000."""
    if guidance_embeds:
        return flux_sampling(FLUX_MAX_SHIFT)
    return FlowSampling(shift=1.0, multiplier=1.0, timesteps=FLOW_TIMESTEPS)


def flux_diffusion_model(transformer: FluxTransformer2DModel, source: str) -> DiffusionModel:
    """Wrap a loaded transformer as MODEL (see the module docstring)."""
    guidance = bool(cast(Any, transformer).config.guidance_embeds)
    return DiffusionModel(
        unet=cast(Any, transformer),
        family=FLUX,
        # The discrete fields are unused: `sampling` says how FLUX samples.
        prediction_type="epsilon",
        alphas_cumprod=alphas_cumprod(),
        source=source,
        prediction_rule=DEV_RULE if guidance else SCHNELL_RULE,
        sampling=default_flux_sampling(guidance),
        network_call=FluxCall(transformer),
    )


def is_flux_file(keys: list[str]) -> bool:
    return flux_prefix(keys) is not None


def load_flux_unet(
    path: Path, *, device: torch.device, dtype: torch.dtype | WeightStorage
) -> DiffusionModel:
    """A FLUX transformer file (original names, optionally under `model.diffusion_model.`)."""
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        prefix = flux_prefix(file.keys())
        if prefix is None:
            raise UnrecognizedCheckpointError(
                path, f"not a FLUX transformer: expected {' and '.join(FLUX_TELL_TALES)}"
            )
        names = {key[len(prefix) :]: key for key in file if key.startswith(prefix)}
        transformer = load_flux_transformer(file, names, path, device=device, dtype=dtype)
    return flux_diffusion_model(transformer, str(path))
