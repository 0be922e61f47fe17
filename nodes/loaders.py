"""Loaders: checkpoints and LoRAs from the configured model folders."""

from __future__ import annotations

from typing import Final

from latentloom.api import (
    DiffusionModel,
    DynamicChoices,
    NodeContext,
    NodeSpec,
    Output,
    PredictionType,
    SocketType,
    TextEncoders,
    apply_lora,
    checkpoint_cost,
    enum_input,
    float_input,
    load_checkpoint,
    lora_cost,
    socket,
)

# The `prediction` widget: "auto" trusts detection (models/detect.py), the others override it.
PREDICTIONS: Final[dict[str, PredictionType | None]] = {
    "auto": None,
    "eps": "epsilon",
    "v": "v_prediction",
}


def load_checkpoint_node(ctx: NodeContext, checkpoint: str, prediction: str) -> dict[str, object]:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction {prediction!r} is not one of: {', '.join(PREDICTIONS)}")
    loaded = load_checkpoint(
        ctx.folders.resolve("checkpoints", checkpoint),
        device=ctx.device,
        dtype=ctx.dtype,
        prediction_type=PREDICTIONS[prediction],
    )
    model = loaded.model
    # What the user should see: which family and prediction type, and why (a list, as in
    # ComfyUI's node outputs).
    detection = {
        "family": model.family.display_name,
        "prediction": model.prediction_type,
        "reason": model.prediction_rule,
    }
    return {
        "model": model,
        "clip": loaded.clip,
        "vae": loaded.vae,
        "report": {"detection": [detection]},
    }


def load_lora(
    ctx: NodeContext,
    model: DiffusionModel,
    clip: TextEncoders,
    lora: str,
    strength_model: float,
    strength_clip: float,
) -> dict[str, object]:
    patched_model, patched_clip = apply_lora(
        model, clip, ctx.folders.resolve("loras", lora), strength_model, strength_clip
    )
    return {"model": patched_model, "clip": patched_clip}


NODES = [
    NodeSpec(
        id="loaders.checkpoint",
        display_name="Load Checkpoint",
        aliases=("CheckpointLoaderSimple", "Load Checkpoint"),
        category="loaders",
        description="Loads a single-file .safetensors checkpoint or a diffusers folder "
        "(SD 1.x, SD 2.x, SDXL; the family is detected from the weights). 'prediction' auto "
        "detects epsilon or v-prediction (a v_pred key, metadata, or for SD 2.x the weights "
        "themselves) and reports what it found and why; eps or v override it.",
        inputs=(
            enum_input("checkpoint", DynamicChoices("checkpoints")),
            enum_input(
                "prediction",
                tuple(PREDICTIONS),
                tooltip="auto: detect from the file; eps / v: override (e.g. an SD 2.x 768-v "
                "file detection gets wrong)",
            ),
        ),
        outputs=(
            Output("model", SocketType.MODEL),
            Output("clip", SocketType.CLIP),
            Output("vae", SocketType.VAE),
        ),
        function=load_checkpoint_node,
        cost=checkpoint_cost,
        version=2,  # SD 2.x files without a marker may now load as v-prediction
    ),
    NodeSpec(
        id="loaders.lora",
        display_name="LoRA Loader",
        aliases=("LoraLoader", "Load LoRA"),
        category="loaders",
        description="Applies a LoRA (kohya or diffusers layout) to the model and text encoder.",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("clip", SocketType.CLIP),
            enum_input("lora", DynamicChoices("loras")),
            float_input("strength_model", 1.0, min=-10.0, max=10.0),
            float_input("strength_clip", 1.0, min=-10.0, max=10.0),
        ),
        outputs=(Output("model", SocketType.MODEL), Output("clip", SocketType.CLIP)),
        function=load_lora,
        cost=lora_cost,
    ),
]
