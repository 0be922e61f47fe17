"""Loaders: checkpoints, LoRAs, VAEs, split UNet files, clip skip and Checkpoint Save (the
text encoder loaders are in loaders_text.py).

Files come from the configured model folders (`ctx.folders`, which confines names to them);
saved checkpoints go to the output folder, as ComfyUI's do. Each loader reports, like Load
Checkpoint, what it detected and why where the file alone cannot say (a VAE's latent scale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, cast

from latentloom.api import (
    WEIGHT_DTYPES,
    Cost,
    CostQuery,
    DiffusionModel,
    DynamicChoices,
    FlowSampling,
    NodeContext,
    NodeSpec,
    Output,
    PredictionType,
    SocketType,
    TextEncoders,
    Vae,
    apply_lora,
    apply_lora_model_only,
    enum_input,
    float_input,
    int_input,
    load_checkpoint,
    load_unet,
    load_vae,
    lora_cost,
    next_free_path,
    save_checkpoint,
    saved_entry,
    set_last_layer,
    socket,
    string_input,
    weight_storage,
    weight_storage_bytes,
)

# The `prediction` widget: "auto" trusts detection (models/detect.py), the others override it.
PREDICTIONS: Final[dict[str, PredictionType | None]] = {
    "auto": None,
    "eps": "epsilon",
    "v": "v_prediction",
}


def _prediction(prediction: str) -> PredictionType | None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction {prediction!r} is not one of: {', '.join(PREDICTIONS)}")
    return PREDICTIONS[prediction]


INPAINT_INPUT_CHANNELS = 9  # latent, mask, masked-image latent
WEIGHT_DTYPE_TOOLTIP = (
    "default: the engine's (fp16 on GPUs, fp32 on the CPU). fp32 / fp16 / bf16 / fp8: the UNet "
    "and text encoders' Linear and Conv weights are stored so and cast per call to the compute "
    "dtype (fp32 on the CPU); fp8 takes a quarter of fp32's memory; fp8_e4m3fn_fast computes "
    "as fp8_e4m3fn here"
)


def _stored_cost(query: CostQuery, folder: str, name: str) -> Cost:
    """A loader's weights as its `weight_dtype` stores them (files taken as fp16)."""
    size = query.files.size(folder, str(query.literals.get(name, ""))) or 0
    choice = str(query.literals.get("weight_dtype", "default"))
    return Cost(weights_bytes=weight_storage_bytes(size, choice, query.compute_bytes))


def _checkpoint_cost(query: CostQuery) -> Cost:
    return _stored_cost(query, "checkpoints", "checkpoint")


def _unet_cost(query: CostQuery) -> Cost:
    return _stored_cost(query, "unet", "unet")


def _sampling_report(model: DiffusionModel) -> dict[str, object]:
    """How the model samples: epsilon / v_prediction, or flow with its shift (SD 3: 3.0; FLUX:
    exp(mu), 3.16 for dev at mu 1.15, 1.0 for schnell)."""
    sampling = model.model_sampling
    if isinstance(sampling, FlowSampling):
        return {"prediction": "flow", "shift": round(sampling.shift, 4)}
    return {"prediction": sampling.kind}


def load_checkpoint_node(
    ctx: NodeContext, checkpoint: str, prediction: str, weight_dtype: str = "default"
) -> dict[str, object]:
    weights = weight_storage(weight_dtype, ctx.device, ctx.dtype)
    loaded = load_checkpoint(
        ctx.folders.resolve("checkpoints", checkpoint),
        device=ctx.weights_device,
        dtype=weights.compute,
        prediction_type=_prediction(prediction),
        weights=weights,
    )
    model = loaded.model
    # What the user should see: which family and prediction type, and why (a list, as in
    # ComfyUI's node outputs).
    detection = {
        "family": model.family.display_name,
        **_sampling_report(model),
        "reason": model.prediction_rule,
        "inpainting": model.input_channels == INPAINT_INPUT_CHANNELS,
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
            enum_input("weight_dtype", WEIGHT_DTYPES, tooltip=WEIGHT_DTYPE_TOOLTIP),
        ),
        outputs=(
            Output("model", SocketType.MODEL),
            Output("clip", SocketType.CLIP),
            Output("vae", SocketType.VAE),
        ),
        function=load_checkpoint_node,
        cost=_checkpoint_cost,
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


# --- Load VAE, split UNet files, LoRA (model only) ------------------------------------

VAE_FAMILIES = ("auto", "sd1", "sdxl", "sd3", "flux")
FP32_VAE_BYTES_PER_STORED = 2  # VAEs are held in fp32; files are usually fp16


def _file_cost(kind: str, *names: str, factor: int = 0) -> Callable[[CostQuery], Cost]:
    """A loader's cost: the named files' weights, held as the engine holds them (`factor`:
    bytes held per stored byte, when that does not follow the engine's dtype)."""

    def cost(query: CostQuery) -> Cost:
        sizes = [query.files.size(kind, str(query.literals.get(name, ""))) or 0 for name in names]
        held = sum(size * factor if factor else query.weights(size) for size in sizes)
        return Cost(weights_bytes=held)

    return cost


def load_vae_node(ctx: NodeContext, vae: str, family: str) -> dict[str, object]:
    if family not in VAE_FAMILIES:
        raise ValueError(f"family {family!r} is not one of: {', '.join(VAE_FAMILIES)}")
    chosen = cast(Literal["auto", "sd1", "sdxl"], family)
    loaded, rule = load_vae(
        ctx.folders.resolve("vae", vae), device=ctx.weights_device, family=chosen
    )
    detection = {"family": loaded.family.display_name, "reason": rule}
    return {"vae": loaded, "report": {"detection": [detection]}}


def load_unet_node(
    ctx: NodeContext, unet: str, weight_dtype: str, prediction: str
) -> dict[str, object]:
    weights = weight_storage(weight_dtype, ctx.device, ctx.dtype)
    model = load_unet(
        ctx.folders.resolve("unet", unet),
        device=ctx.weights_device,
        dtype=weights.compute,
        prediction_type=_prediction(prediction),
        weights=weights,
    )
    detection = {
        "family": model.family.display_name,
        **_sampling_report(model),
        "reason": model.prediction_rule,
    }
    return {"model": model, "report": {"detection": [detection]}}


def load_lora_model_only(
    ctx: NodeContext, model: DiffusionModel, lora: str, strength_model: float
) -> dict[str, object]:
    path = ctx.folders.resolve("loras", lora)
    return {"model": apply_lora_model_only(model, path, strength_model)}


def clip_set_last_layer(
    ctx: NodeContext, clip: TextEncoders, stop_at_clip_layer: int
) -> dict[str, object]:
    return {"clip": set_last_layer(clip, stop_at_clip_layer)}


# --- Checkpoint Save ---------------------------------------------------------------------

CHECKPOINT_SUFFIX = ".safetensors"


def _split_prefix(filename_prefix: str) -> tuple[str, str]:
    """`checkpoints/name` -> ("checkpoints", "name"); the folder stays inside the output."""
    folder, _, name = filename_prefix.replace("\\", "/").rpartition("/")
    parts = [part for part in folder.split("/") if part]
    if filename_prefix.startswith("/") or any(part in (".", "..") for part in parts):
        raise ValueError(
            f"filename_prefix {filename_prefix!r} must stay inside the output folder: use a "
            "relative folder without '..', e.g. checkpoints/my-model"
        )
    return "/".join(parts), name or "latentloom"


def save_checkpoint_node(
    ctx: NodeContext,
    model: DiffusionModel,
    clip: TextEncoders,
    vae: Vae,
    filename_prefix: str,
) -> dict[str, object]:
    import json

    folder, prefix = _split_prefix(filename_prefix)
    root = ctx.settings.output_dir
    path = next_free_path(root / folder, prefix, CHECKPOINT_SUFFIX)
    try:
        metadata = {"workflow": json.dumps(ctx.workflow_json, separators=(",", ":"))}
        save_checkpoint(path, model, clip, vae, metadata=metadata)
    except BaseException:
        path.unlink(missing_ok=True)  # the empty reservation: nothing was saved
        raise
    return {"report": {"checkpoints": [saved_entry(path, root)]}}


def _save_checkpoint_cost(query: CostQuery) -> Cost:
    return Cost()  # streams one tensor at a time out of the loaded weights


NODES += [
    NodeSpec(
        id="loaders.vae",
        display_name="Load VAE",
        aliases=("VAELoader", "Load VAE", "VAE Loader"),
        category="loaders",
        description="Loads a VAE from the vae folder: a single .safetensors file in the "
        "original (first_stage_model / encoder.down.*) or diffusers (encoder.down_blocks.*) "
        "layout, or a diffusers VAE folder (config.json + weights). SD 1.x and SDXL VAEs have "
        "the same structure and differ only in their latent scale: 'family' auto takes it "
        "from a diffusers config and otherwise assumes SD 1.x (and says so); choose sdxl for "
        "an SDXL VAE file. 16-channel VAEs (SD 3, FLUX.1's ae.safetensors) are told apart the "
        "same way: auto assumes FLUX.1; a sampled latent decodes in its model's family.",
        inputs=(
            enum_input("vae", DynamicChoices("vae")),
            enum_input(
                "family",
                VAE_FAMILIES,
                tooltip="Which latent scale the VAE uses: auto (a diffusers config, else SD "
                "1.x; 16 channels: FLUX.1), sd1 (SD 1.x / 2.x, 0.18215), sdxl (0.13025), sd3 "
                "(1.5305, shift 0.0609) or flux (0.3611, shift 0.1159)",
            ),
        ),
        outputs=(Output("vae", SocketType.VAE),),
        function=load_vae_node,
        cost=_file_cost("vae", "vae", factor=FP32_VAE_BYTES_PER_STORED),
    ),
    NodeSpec(
        id="loaders.clip_set_last_layer",
        display_name="CLIP Set Last Layer",
        aliases=("CLIPSetLastLayer", "CLIP Set Last Layer", "clip skip"),
        category="conditioning",
        description="Clip skip: prompts are read from an earlier layer of the text encoder(s), "
        "counted from the end (-1 the last, -2 the one before: 'clip skip 2'). As in ComfyUI "
        "the layer is set directly, so -1 reads the last layer even for SD 2.x and SDXL, "
        "which use the penultimate one by default. A layer past the encoder's depth (SD 1.x: "
        "12 layers) is an error.",
        inputs=(
            socket("clip", SocketType.CLIP),
            int_input("stop_at_clip_layer", -1, min=-24, max=-1),
        ),
        outputs=(Output("clip", SocketType.CLIP),),
        function=clip_set_last_layer,
    ),
    NodeSpec(
        id="loaders.lora_model_only",
        display_name="LoRA Loader (model only)",
        aliases=("LoraLoaderModelOnly", "Load LoRA (model only)"),
        category="loaders",
        description="Applies a LoRA's UNet layers only; its text-encoder layers, if any, are "
        "skipped. Every UNet key must match the model.",
        inputs=(
            socket("model", SocketType.MODEL),
            enum_input("lora", DynamicChoices("loras")),
            float_input("strength_model", 1.0, min=-100.0, max=100.0),
        ),
        outputs=(Output("model", SocketType.MODEL),),
        function=load_lora_model_only,
        cost=lora_cost,
    ),
    NodeSpec(
        id="loaders.unet",
        display_name="Load Diffusion Model",
        aliases=("UNETLoader", "Load Diffusion Model", "UNet Loader"),
        category="loaders",
        description="Loads a UNet saved on its own (unet or diffusion_models folder), in the "
        "original layout (input_blocks.*, as ComfyUI saves it) or diffusers' (down_blocks.*). "
        "The family comes from the UNet's structure; the noise schedule is SD's default; "
        "'prediction' auto detects v-prediction from a v_pred key, metadata or SD 2.x's "
        "weights, else epsilon.",
        inputs=(
            enum_input("unet", DynamicChoices("unet")),
            enum_input(
                "weight_dtype",
                WEIGHT_DTYPES,
                tooltip=WEIGHT_DTYPE_TOOLTIP,
            ),
            enum_input("prediction", tuple(PREDICTIONS)),
        ),
        outputs=(Output("model", SocketType.MODEL),),
        function=load_unet_node,
        cost=_unet_cost,
    ),
    NodeSpec(
        id="loaders.checkpoint_save",
        display_name="Save Checkpoint",
        aliases=("CheckpointSave", "Save Checkpoint"),
        category="advanced/model_merging",
        description="Saves the model, CLIP and VAE as one single-file .safetensors checkpoint "
        "(original layout, LoRAs and other weight patches baked in, v-prediction marked) "
        "under the output folder; filename_prefix may name a subfolder. It loads back with "
        "Load Checkpoint. Clip skip is not part of the weights and is not saved.",
        inputs=(
            socket("model", SocketType.MODEL),
            socket("clip", SocketType.CLIP),
            socket("vae", SocketType.VAE),
            string_input("filename_prefix", "checkpoints/latentloom"),
        ),
        outputs=(),
        function=save_checkpoint_node,
        output_node=True,
        cost=_save_checkpoint_cost,
    ),
]
