"""Model sampling nodes: override how a model maps sigmas, and FLUX's distilled guidance.

Each model node returns a copy of its MODEL with a new `ModelSampling` (the input is never
changed) and refuses a model of the other kind, since an SD UNet sampled as a flow model (or
the reverse) gives noise: ModelSamplingDiscrete takes SD 1.x / 2.x / SDXL models, the two flow
nodes take SD 3.x / FLUX models. The flow nodes keep the model's timestep multiplier and table
(SD3: sigma x 1000 over 1000 entries; FLUX: sigma over 10000) and set only the shift, so
either works on either flow family. FluxGuidance sets the guidance every conditioning entry
carries to a guidance-distilled FLUX model.
"""

from __future__ import annotations

import math
from dataclasses import replace

from latentloom.api import (
    Conditioning,
    DiffusionModel,
    FlowSampling,
    NodeContext,
    NodeSpec,
    Output,
    PredictionType,
    SocketType,
    boolean_input,
    enum_input,
    float_input,
    flux_mu,
    int_input,
    socket,
    zero_terminal_snr,
)

ADVANCED_MODEL = "advanced/model"
FLUX_CONDITIONING = "advanced/conditioning/flux"
DISCRETE_SAMPLINGS = ("eps", "v_prediction")  # ComfyUI's names for epsilon / v
PREDICTION_OF: dict[str, PredictionType] = {"eps": "epsilon", "v_prediction": "v_prediction"}


class ModelKindError(ValueError):
    """A model sampling node was given a model of the other kind (discrete vs flow)."""

    def __init__(self, node: str, model: DiffusionModel, wants: str, use: str) -> None:
        kind = model.model_sampling.kind
        super().__init__(
            f"{node} applies to {wants} models, but {model.source} "
            f"({model.family.display_name}) samples as {kind!r}; use {use} instead"
        )


def model_sampling_discrete(
    ctx: NodeContext, model: DiffusionModel, sampling: str, zsnr: bool
) -> dict[str, object]:
    if model.model_sampling.kind == "flow":
        raise ModelKindError(
            "Model Sampling Discrete",
            model,
            "SD 1.x / 2.x / SDXL",
            "Model Sampling SD3 or Model Sampling Flux",
        )
    cumprod = zero_terminal_snr(model.alphas_cumprod) if zsnr else model.alphas_cumprod
    prediction = PREDICTION_OF[sampling]
    patched = replace(model, prediction_type=prediction, alphas_cumprod=cumprod, sampling=None)
    return {"model": patched}


def _flow_copy(node: str, model: DiffusionModel, shift: float) -> DiffusionModel:
    current = model.model_sampling
    if not isinstance(current, FlowSampling):
        raise ModelKindError(
            node, model, "rectified-flow (SD 3.x / FLUX)", "Model Sampling Discrete"
        )
    sampling = FlowSampling(shift, current.multiplier, current.timesteps)
    return replace(model, sampling=sampling)


def model_sampling_sd3(ctx: NodeContext, model: DiffusionModel, shift: float) -> dict[str, object]:
    return {"model": _flow_copy("Model Sampling SD3", model, shift)}


def model_sampling_flux(
    ctx: NodeContext,
    model: DiffusionModel,
    max_shift: float,
    base_shift: float,
    width: int,
    height: int,
) -> dict[str, object]:
    mu = flux_mu(width, height, base_shift=base_shift, max_shift=max_shift)
    return {"model": _flow_copy("Model Sampling Flux", model, math.exp(mu))}


def flux_guidance(
    ctx: NodeContext, conditioning: Conditioning, guidance: float
) -> dict[str, object]:
    entries = tuple(replace(entry, guidance=guidance) for entry in conditioning.entries)
    return {"conditioning": Conditioning(entries)}


MODEL_OUT = (Output("model", SocketType.MODEL),)

NODES = [
    NodeSpec(
        id="model.model_sampling_discrete",
        display_name="Model Sampling Discrete",
        aliases=("ModelSamplingDiscrete",),
        category=ADVANCED_MODEL,
        description="Samples an SD 1.x / 2.x / SDXL model as epsilon or v-prediction "
        "(whatever was detected), optionally with its noise schedule rescaled to zero "
        "terminal SNR (zsnr, for models trained that way).",
        inputs=(
            socket("model", SocketType.MODEL),
            enum_input("sampling", DISCRETE_SAMPLINGS, "eps"),
            boolean_input("zsnr", False),
        ),
        outputs=MODEL_OUT,
        function=model_sampling_discrete,
    ),
    NodeSpec(
        id="model.model_sampling_sd3",
        display_name="Model Sampling SD3",
        aliases=("ModelSamplingSD3",),
        category=ADVANCED_MODEL,
        description="Sets a rectified-flow model's timestep shift: sigma(t) = shift t / "
        "(1 + (shift - 1) t). Higher shifts spend more steps at high noise (SD 3.x: 3.0).",
        inputs=(
            socket("model", SocketType.MODEL),
            float_input("shift", 3.0, min=0.01, max=100.0, step=0.01),
        ),
        outputs=MODEL_OUT,
        function=model_sampling_sd3,
    ),
    NodeSpec(
        id="model.model_sampling_flux",
        display_name="Model Sampling Flux",
        aliases=("ModelSamplingFlux",),
        category=ADVANCED_MODEL,
        description="FLUX's resolution-dependent shift: mu rises linearly with the image's "
        "16x16-pixel tokens from base_shift at 256 tokens to max_shift at 4096 (1024x1024), "
        "and the shift is exp(mu).",
        inputs=(
            socket("model", SocketType.MODEL),
            float_input("max_shift", 1.15, min=0.0, max=100.0, step=0.01),
            float_input("base_shift", 0.5, min=0.0, max=100.0, step=0.01),
            int_input("width", 1024, min=16, max=16384, step=8),
            int_input("height", 1024, min=16, max=16384, step=8),
        ),
        outputs=MODEL_OUT,
        function=model_sampling_flux,
    ),
    NodeSpec(
        id="conditioning.flux_guidance",
        display_name="FluxGuidance",
        aliases=("FluxGuidance",),
        category=FLUX_CONDITIONING,
        description="The guidance a guidance-distilled FLUX model (dev) is told to follow, set "
        "on every entry; FLUX dev runs with cfg 1 and takes this instead (3.5 is typical).",
        inputs=(
            socket("conditioning", SocketType.CONDITIONING),
            float_input("guidance", 3.5, min=0.0, max=100.0, step=0.1),
        ),
        outputs=(Output("conditioning", SocketType.CONDITIONING),),
        function=flux_guidance,
    ),
]
