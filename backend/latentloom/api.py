"""The public node API: the one module a node pack imports, the built-in pack included.

Everything a node needs is here: the spec helpers and socket types, the context a node
function receives, the values that travel along links (handles), cost declarations for the
budget, and the helpers that do the heavy lifting (load a model file, encode a prompt,
encode/decode with a VAE, sample, save images). Every other module of `latentloom` is
private and may change between versions; a test fails if `nodes/` imports one.

Importing this module is cheap: helpers that need diffusers or transformers import them on
first call, so a server that lists nodes never pays for a model stack it has not used.

A pack is a Python file or package in a nodes folder (or a `latentloom.nodes` entry point)
with a module-level `NODES` list of `NodeSpec`s; see the README for an example.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from latentloom.engine.context import Cancelled, NodeContext
from latentloom.engine.folders import INPUT_LATENTS, INPUT_POSES, INPUTS, Folders
from latentloom.graph.cost import Batch, Cost, CostQuery, Estimate, Refusal, Value
from latentloom.image_resample import (
    CROP_METHODS,
    UPSCALE_METHODS,
    SizeProblem,
    repeat_to_batch,
    resize_images,
    scale_by_size,
    scale_size,
    total_pixels_size,
)
from latentloom.images import (
    from_pil,
    next_free_path,
    png_text_chunks,
    save_animation,
    save_pngs,
    saved_entry,
    to_pil,
    write_png,
)
from latentloom.latent_file import SUFFIX as LATENT_FILE_SUFFIX
from latentloom.latent_file import read_latent_file, to_scaled, write_latent_file
from latentloom.latent_math import add_noise as mix_noise
from latentloom.latent_math import interpolate, lerp, seeded_noise, slerp
from latentloom.masks import (
    COMPOSITE_OPERATIONS,
    MASK_CHANNELS,
    alpha_to_mask,
    color_to_mask,
    composite_masks,
    crop_mask,
    feather_mask,
    grow_mask,
    grow_mask_box,
    image_to_mask,
    inpaint_pixels,
    mask_batch,
    mask_to_image,
    pad_for_outpaint,
    resize_mask,
    threshold_mask,
)
from latentloom.models.clip_vision import CROPS as CLIP_VISION_CROPS
from latentloom.models.clip_vision import ClipVision, ClipVisionOutput
from latentloom.models.control_lora import ControlLoraSource
from latentloom.models.controlnet_source import AdapterSource, ControlModel, ControlNetSource
from latentloom.models.controlnet_union import UNION_CHOICES, UNION_TYPES
from latentloom.models.family import FAMILIES, SD2, SD3, SD15, SDXL, Family
from latentloom.models.handles import (
    Checkpoint,
    ClipTextEncoder,
    Conditioning,
    ConditioningEntry,
    DiffusionModel,
    FractionArea,
    Latent,
    LatentArea,
    PredictionType,
    SizeConditioning,
    TextEncoders,
    Vae,
    WeightPatch,
)
from latentloom.models.ip_adapter import IpAdapter
from latentloom.models.ip_adapter_patch import COMBINE_EMBEDS as IPADAPTER_COMBINE_EMBEDS
from latentloom.models.upscale_model import UpscaleModel
from latentloom.models.weight_dtype import (
    WEIGHT_DTYPES,
    WeightDtypeError,
    WeightStorage,
    weight_storage,
    weight_storage_bytes,
)
from latentloom.node import (
    DynamicChoices,
    FileReference,
    Input,
    NodeSpec,
    Output,
    SocketType,
    WidgetType,
    boolean_input,
    enum_input,
    float_input,
    int_input,
    socket,
    string_input,
)
from latentloom.node_costs import (
    auto_decode_tile,
    checkpoint_cost,
    flip_sigmas_cost,
    ksampler_advanced_cost,
    ksampler_cost,
    load_image_cost,
    lora_cost,
    sampler_custom_cost,
    save_images_cost,
    schedule_length,
    scheduler_cost,
    split_sigmas_cost,
    split_sigmas_denoise_cost,
    vae_decode_cost,
    vae_encode_cost,
    value_cost,
)
from latentloom.nodes_limits import (
    MAX_BATCH,
    MAX_FRAMES,
    MAX_SCHEDULE_LENGTH,
    MAX_SIDE,
    MAX_TEXT_LENGTH,
)
from latentloom.preprocess.canny import canny_edges
from latentloom.preprocess.depth import normal_from_depth, normalize_depth
from latentloom.preprocess.lines import LINE_ART_STYLES, LINE_COLOURS, line_art
from latentloom.preprocess.lines import scribble as scribble_lines
from latentloom.preprocess.openpose import COORDINATES as POSE_COORDINATES
from latentloom.preprocess.openpose import PoseFormatError, read_pose
from latentloom.preprocess.pose_draw import draw_pose
from latentloom.preprocess.registry import Preprocessor, PreprocessorError, preprocessor_nodes
from latentloom.preview import latent_to_rgb
from latentloom.sampling.custom import DisabledNoise, Guider, Noise, RandomNoise, SamplerChoice
from latentloom.sampling.model_sampling import (
    DiscreteSampling,
    FlowSampling,
    ModelSampling,
    flux_mu,
    flux_sampling,
    sd3_sampling,
    zero_terminal_snr,
)
from latentloom.sampling.node_steps import sigmas_report, step_callback
from latentloom.sampling.run import SamplingResult, run_sampling, sample, sample_advanced
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.schedules import SCHEDULES
from latentloom.sampling.sigma_ops import (
    basic_scheduler_sigmas,
    exponential_sigmas,
    flip_sigmas,
    karras_sigmas,
    split_sigmas,
    split_sigmas_by_denoise,
)
from latentloom.text.clip_skip import set_last_layer
from latentloom.text.embeddings import EMBEDDINGS
from latentloom.text.embeddings import references as prompt_embeddings
from latentloom.tiled_costs import (
    upscale_model_loader_cost,
    upscale_tile,
    upscale_with_model_cost,
    upscaled_side_refusal,
    vae_decode_tiled_cost,
    vae_encode_tiled_cost,
)
from latentloom.upscale import DEFAULT_OVERLAP as UPSCALE_OVERLAP
from latentloom.upscale import DEFAULT_TILE as UPSCALE_TILE
from latentloom.upscale import upscale_images
from latentloom.vae import decode as vae_decode
from latentloom.vae import encode as vae_encode
from latentloom.vae_tiled import decode_tiled as vae_decode_tiled
from latentloom.vae_tiled import encode_tiled as vae_encode_tiled

if TYPE_CHECKING:
    from latentloom.text.encode import Weighting

MAX_SEED = 2**64 - 1  # seeds are unsigned 64-bit, as in ComfyUI


def load_checkpoint(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    prediction_type: PredictionType | None = None,
    weights: WeightStorage | None = None,
) -> Checkpoint:
    """A single-file checkpoint or diffusers folder as MODEL, CLIP and VAE handles.

    `path` comes from `ctx.folders.resolve(folder, name)`, which confines it to the folder.
    `weights` (from `weight_storage`): how the UNet and text encoders are stored.
    """
    from latentloom.models.load import load_checkpoint as load

    return load(path, device=device, dtype=dtype, prediction_type=prediction_type, weights=weights)


def apply_lora(
    model: DiffusionModel,
    clip: TextEncoders,
    path: Path,
    strength_model: float,
    strength_clip: float,
) -> tuple[DiffusionModel, TextEncoders]:
    """New handles with a LoRA file's deltas recorded as weight patches (inputs untouched)."""
    from latentloom.models.lora import apply_lora as apply

    return apply(model, clip, path, strength_model, strength_clip)


def apply_lora_model_only(model: DiffusionModel, path: Path, strength: float) -> DiffusionModel:
    """A new MODEL handle with a LoRA file's UNet deltas as patches (text layers skipped)."""
    from latentloom.models.lora import apply_lora_model_only as apply

    return apply(model, path, strength)


def encode_prompt(
    clip: TextEncoders,
    text: str,
    weighting: Literal["a1111", "comfy"] = "a1111",
    *,
    embeddings: Folders | None = None,
) -> Conditioning:
    """A prompt (emphasis, BREAK, any length) as one conditioning entry.

    `embeddings`: where `embedding:name` files are found (`ctx.folders`); a prompt that names
    one without it is refused. Declare `references=prompt_embeddings` on the text input so
    validation checks the names first.
    """
    from latentloom.text.encode import encode_prompt as encode

    chosen: Weighting = weighting
    return encode(clip, text, chosen, embeddings=embeddings)


def encode_prompt_pair(
    clip: TextEncoders,
    text_g: str,
    text_l: str,
    weighting: Literal["a1111", "comfy"] = "a1111",
    *,
    embeddings: Folders | None = None,
) -> Conditioning:
    """SDXL base: `text_g` through OpenCLIP bigG and `text_l` through CLIP-L, one entry (the
    shorter padded with the empty prompt, as ComfyUI's CLIPTextEncodeSDXL)."""
    from latentloom.text.encode_sdxl import encode_prompt_pair as encode

    chosen: Weighting = weighting
    return encode(clip, text_g, text_l, chosen, embeddings=embeddings)


def encode_sd3(
    clip: TextEncoders,
    *,
    clip_l: str | None,
    clip_g: str | None,
    t5xxl: str | None,
    weighting: Literal["a1111", "comfy"] = "a1111",
    embeddings: Folders | None = None,
) -> Conditioning:
    """SD 3.x: one prompt per encoder (CLIP-L, CLIP-G, T5-XXL); None leaves that encoder out,
    encoders the CLIP lacks give zeros (text/t5_encode.py)."""
    from latentloom.text.t5_encode import encode_sd3 as encode

    chosen: Weighting = weighting
    return encode(
        clip, clip_l=clip_l, clip_g=clip_g, t5xxl=t5xxl, weighting=chosen, embeddings=embeddings
    )


def encode_flux(
    clip: TextEncoders,
    *,
    clip_l: str,
    t5xxl: str,
    guidance: float | None = None,
    weighting: Literal["a1111", "comfy"] = "a1111",
    embeddings: Folders | None = None,
) -> Conditioning:
    """FLUX.1: T5-XXL's context with CLIP-L's pooled vector; `guidance` set on the entry for
    FLUX dev's guidance embedder (None: the model's default)."""
    from latentloom.text.t5_encode import encode_flux as encode

    chosen: Weighting = weighting
    return encode(
        clip, clip_l=clip_l, t5xxl=t5xxl, guidance=guidance, weighting=chosen, embeddings=embeddings
    )


def load_vae(
    path: Path, *, device: torch.device, family: Literal["auto", "sd1", "sdxl"] = "auto"
) -> tuple[Vae, str]:
    """A VAE file or diffusers VAE folder, and why it uses its family's latent scale."""
    from latentloom.models.device import VAE_DTYPE
    from latentloom.models.vae_file import load_vae as load

    loaded = load(path, device=device, dtype=VAE_DTYPE, family=family)
    return loaded.vae, loaded.family_rule


def load_unet(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    prediction_type: PredictionType | None = None,
    weights: WeightStorage | None = None,
) -> DiffusionModel:
    """A UNet saved on its own (original or diffusers names) as a MODEL handle; `weights`
    (from `weight_storage`) chooses its storage dtype."""
    from latentloom.models.component_load import load_unet as load

    return load(path, device=device, dtype=dtype, prediction_type=prediction_type, weights=weights)


def load_text_encoders(
    paths: list[Path],
    kind: Literal["stable_diffusion", "sdxl"],
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> TextEncoders:
    """Text encoder files as a CLIP handle (one file, or SDXL's CLIP-L and CLIP-G)."""
    from latentloom.models.component_load import load_text_encoders as load

    return load(paths, kind, device=device, dtype=dtype)


def load_family_text_encoders(
    paths: list[Path],
    kind: Literal["sd3", "flux"],
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> TextEncoders:
    """SD 3 / FLUX text encoder files (CLIP-L, CLIP-G, T5-XXL, each told by its tensors, in
    any order) as one CLIP handle; a file no role fits is refused naming what it holds."""
    from latentloom.models.t5_clip_load import load_family_text_encoders as load

    return load(paths, kind, device=device, dtype=dtype)


def text_encoder_role(path: Path) -> str | None:
    """What a text encoder file holds ("T5-XXL", "CLIP-L", "CLIP-G", a CLIP of another width,
    or None: neither), told from its tensors: for loader messages naming the file's role."""
    from latentloom.models.t5_clip_load import file_role

    return file_role(path)


def save_checkpoint(
    path: Path,
    model: DiffusionModel,
    clip: TextEncoders,
    vae: Vae,
    *,
    metadata: dict[str, str] | None = None,
) -> None:
    """The three parts, weight patches baked in, as one original-layout `.safetensors` file."""
    from latentloom.models.checkpoint_save import save_checkpoint as save

    save(path, model, clip, vae, metadata=metadata)


def load_control_model(
    path: Path, *, device: torch.device, dtype: torch.dtype | None = None
) -> ControlModel:
    """A ControlNet or T2I-Adapter file or diffusers folder (layout and family detected)."""
    from latentloom.models.controlnet import load_control_model as load

    return load(path, device=device, dtype=dtype)


def load_upscale_model(path: Path, *, device: torch.device, dtype: torch.dtype) -> UpscaleModel:
    """An upscaler `.safetensors` file (ESRGAN, Real-ESRGAN, SwinIR, ... as spandrel detects
    them) as an UPSCALE_MODEL handle; pickle files are refused."""
    from latentloom.models.upscale_model import load_upscale_model as load

    return load(path, device=device, dtype=dtype)


def load_clip_vision(path: Path, *, device: torch.device, dtype: torch.dtype) -> ClipVision:
    """A `clip_vision/` safetensors file (ViT-L/14, ViT-H/14, ViT-bigG/14) as CLIP_VISION."""
    from latentloom.models.clip_vision import load_clip_vision as load

    return load(path, device=device, dtype=dtype)


def clip_vision_encode(
    clip_vision: ClipVision, images: torch.Tensor, crop: Literal["center", "none"] = "center"
) -> ClipVisionOutput:
    """IMAGE -> CLIP_VISION_OUTPUT (image embeds, last and penultimate hidden states)."""
    from latentloom.models.clip_vision import encode_image

    return encode_image(clip_vision, images, crop)


def load_ip_adapter(path: Path, *, device: torch.device, dtype: torch.dtype) -> IpAdapter:
    """An `ipadapter/` safetensors file (IP-Adapter, Plus, Full Face) as IPADAPTER."""
    from latentloom.models.ip_adapter import load_ip_adapter as load

    return load(path, device=device, dtype=dtype)


def apply_ip_adapter(
    model: DiffusionModel,
    adapter: IpAdapter,
    clip_vision: ClipVision,
    images: torch.Tensor,
    weight: float,
    start_at: float = 0.0,
    end_at: float = 1.0,
    *,
    negative: torch.Tensor | None = None,
    combine: str = "concat",
) -> DiffusionModel:
    """A new MODEL handle attending to `images` through the adapter while sampling."""
    from latentloom.models.ip_adapter_patch import apply_ip_adapter as apply

    return apply(
        model,
        adapter,
        clip_vision,
        images,
        weight,
        start_at,
        end_at,
        negative=negative,
        combine=combine,
    )


__all__ = [
    "CLIP_VISION_CROPS",
    "COMPOSITE_OPERATIONS",
    "CROP_METHODS",
    "EMBEDDINGS",
    "FAMILIES",
    "INPUTS",
    "INPUT_LATENTS",
    "INPUT_POSES",
    "IPADAPTER_COMBINE_EMBEDS",
    "LATENT_FILE_SUFFIX",
    "LINE_ART_STYLES",
    "LINE_COLOURS",
    "MASK_CHANNELS",
    "MAX_BATCH",
    "MAX_FRAMES",
    "MAX_SCHEDULE_LENGTH",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_TEXT_LENGTH",
    "POSE_COORDINATES",
    "SAMPLERS",
    "SCHEDULES",
    "SD2",
    "SD3",
    "SD15",
    "SDXL",
    "UNION_CHOICES",
    "UNION_TYPES",
    "UPSCALE_METHODS",
    "UPSCALE_OVERLAP",
    "UPSCALE_TILE",
    "WEIGHT_DTYPES",
    "AdapterSource",
    "Batch",
    "Cancelled",
    "Checkpoint",
    "ClipTextEncoder",
    "ClipVision",
    "ClipVisionOutput",
    "Conditioning",
    "ConditioningEntry",
    "ControlLoraSource",
    "ControlModel",
    "ControlNetSource",
    "Cost",
    "CostQuery",
    "DiffusionModel",
    "DisabledNoise",
    "DiscreteSampling",
    "DynamicChoices",
    "Estimate",
    "Family",
    "FileReference",
    "FlowSampling",
    "Folders",
    "FractionArea",
    "Guider",
    "Input",
    "IpAdapter",
    "Latent",
    "LatentArea",
    "ModelSampling",
    "NodeContext",
    "NodeSpec",
    "Noise",
    "Output",
    "PoseFormatError",
    "PredictionType",
    "Preprocessor",
    "PreprocessorError",
    "RandomNoise",
    "Refusal",
    "SamplerChoice",
    "SamplingResult",
    "SizeConditioning",
    "SizeProblem",
    "SocketType",
    "TextEncoders",
    "UpscaleModel",
    "Vae",
    "Value",
    "WeightDtypeError",
    "WeightPatch",
    "WeightStorage",
    "WidgetType",
    "alpha_to_mask",
    "apply_ip_adapter",
    "apply_lora",
    "apply_lora_model_only",
    "auto_decode_tile",
    "basic_scheduler_sigmas",
    "boolean_input",
    "canny_edges",
    "checkpoint_cost",
    "clip_vision_encode",
    "color_to_mask",
    "composite_masks",
    "crop_mask",
    "draw_pose",
    "encode_flux",
    "encode_prompt",
    "encode_prompt_pair",
    "encode_sd3",
    "enum_input",
    "exponential_sigmas",
    "feather_mask",
    "flip_sigmas",
    "flip_sigmas_cost",
    "float_input",
    "flux_mu",
    "flux_sampling",
    "from_pil",
    "grow_mask",
    "grow_mask_box",
    "image_to_mask",
    "inpaint_pixels",
    "int_input",
    "interpolate",
    "karras_sigmas",
    "ksampler_advanced_cost",
    "ksampler_cost",
    "latent_to_rgb",
    "lerp",
    "line_art",
    "load_checkpoint",
    "load_clip_vision",
    "load_control_model",
    "load_family_text_encoders",
    "load_image_cost",
    "load_ip_adapter",
    "load_text_encoders",
    "load_unet",
    "load_upscale_model",
    "load_vae",
    "lora_cost",
    "mask_batch",
    "mask_to_image",
    "mix_noise",
    "next_free_path",
    "normal_from_depth",
    "normalize_depth",
    "pad_for_outpaint",
    "png_text_chunks",
    "preprocessor_nodes",
    "prompt_embeddings",
    "read_latent_file",
    "read_pose",
    "repeat_to_batch",
    "resize_images",
    "resize_mask",
    "run_sampling",
    "sample",
    "sample_advanced",
    "sampler_custom_cost",
    "save_animation",
    "save_checkpoint",
    "save_images_cost",
    "save_pngs",
    "saved_entry",
    "scale_by_size",
    "scale_size",
    "schedule_length",
    "scheduler_cost",
    "scribble_lines",
    "sd3_sampling",
    "seeded_noise",
    "set_last_layer",
    "sigmas_report",
    "slerp",
    "socket",
    "split_sigmas",
    "split_sigmas_by_denoise",
    "split_sigmas_cost",
    "split_sigmas_denoise_cost",
    "step_callback",
    "string_input",
    "text_encoder_role",
    "threshold_mask",
    "to_pil",
    "to_scaled",
    "total_pixels_size",
    "upscale_images",
    "upscale_model_loader_cost",
    "upscale_tile",
    "upscale_with_model_cost",
    "upscaled_side_refusal",
    "vae_decode",
    "vae_decode_cost",
    "vae_decode_tiled",
    "vae_decode_tiled_cost",
    "vae_encode",
    "vae_encode_cost",
    "vae_encode_tiled",
    "vae_encode_tiled_cost",
    "value_cost",
    "weight_storage",
    "weight_storage_bytes",
    "write_latent_file",
    "write_png",
    "zero_terminal_snr",
]
