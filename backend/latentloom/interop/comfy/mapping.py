"""The ComfyUI class table: one declarative entry per ComfyUI class we run.

Each entry says which of our nodes a ComfyUI class becomes and how its inputs translate:
`rename` maps ComfyUI input names to ours (names not listed are the same on both sides),
`widgets` gives ComfyUI's widget order where it differs from ours (editor files store widget
values by position), `seeds` names the INT widgets followed by a `control_after_generate`
value, `uploads` the widgets followed by an upload-button value, `fixed` sets our inputs
that ComfyUI has no widget for (its behaviour, stated), `neutral` lists ComfyUI inputs we have
no counterpart for together with the only values that mean "no change" there, and `outputs`
names our outputs by ComfyUI output index where the order or the set differs (None: an
output we don't produce yet). `booleans` turns a ComfyUI COMBO of two words into our BOOLEAN
(KSamplerAdvanced's "enable"/"disable"), `shared_values` limits an input both sides have to
the values that mean the same on both (UNETLoader's weight_dtype "default"; a file with
another value imports as a placeholder, and ours with another value does not export), and
`trailing` names the last widgets that files from some ComfyUI versions lack (added or
removed over time): such files store only the values before them. `ours_only_values` are
values of ours the class does not offer (the align_your_steps schedule, a node of its own in
ComfyUI): a node using one does not export.

Import, export, `/object_info` and the editor's search all read this table; nothing else
knows ComfyUI's class names. ComfyUI's formats and behaviour are facts we match; its code is
not ours and is not copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from latentloom.graph.workflow import LiteralValue
from latentloom.node import NodeSpec

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True)
class ClassMapping:
    comfy_class: str
    node: str  # our catalog id
    rename: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # ComfyUI name -> ours
    widgets: tuple[str, ...] | None = None  # ComfyUI widget names in widgets_values order
    seeds: tuple[str, ...] = ()  # followed by a control_after_generate value
    uploads: tuple[str, ...] = ()  # followed by the upload button's value
    fixed: Mapping[str, LiteralValue] = field(default_factory=dict)  # our input -> value
    neutral: Mapping[str, tuple[LiteralValue, ...]] = field(default_factory=dict)
    outputs: tuple[str | None, ...] | None = None  # ours by ComfyUI output index
    # Export: ComfyUI's output types by index, where it has outputs we don't produce.
    output_types: tuple[str, ...] | None = None
    # Export: ComfyUI's socket inputs in its order, where our order differs.
    sockets: tuple[str, ...] | None = None
    ours_only: tuple[str, ...] = ()  # our inputs the class lacks: export leaves them out
    # `fixed` inputs that export anyway when ours differ (ComfyUI computes them its own way,
    # with a warning); any other difference in a fixed input makes the node unexportable.
    approximates: tuple[str, ...] = ()
    # ComfyUI COMBO -> our BOOLEAN: (ComfyUI's word for True, its word for False).
    booleans: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # Inputs both sides have where only these values mean the same thing on both.
    shared_values: Mapping[str, tuple[LiteralValue, ...]] = field(default_factory=dict)
    trailing: tuple[str, ...] = ()  # last widgets, absent from some versions' files
    ours_only_values: Mapping[str, tuple[LiteralValue, ...]] = field(default_factory=dict)

    def ours(self, comfy_input: str) -> str:
        """Our name for a ComfyUI input."""
        return self.rename.get(comfy_input, comfy_input)

    def theirs(self, our_input: str) -> str:
        """ComfyUI's name for one of our inputs."""
        return next((c for c, o in self.rename.items() if o == our_input), our_input)

    def to_ours(self, comfy_input: str, value: LiteralValue) -> LiteralValue:
        """A ComfyUI widget value as our input holds it (`booleans`: the word as a bool)."""
        words = self.booleans.get(comfy_input)
        return value == words[0] if words is not None and value in words else value

    def to_comfy(self, comfy_input: str, value: LiteralValue) -> LiteralValue:
        """One of our values as ComfyUI's widget holds it (`booleans`: the bool as a word)."""
        words = self.booleans.get(comfy_input)
        if words is not None and isinstance(value, bool):
            return words[0] if value else words[1]
        return value

    def widget_order(self, spec: NodeSpec) -> tuple[str, ...]:
        """ComfyUI's widget input names, in the order editor files store their values."""
        if self.widgets is not None:
            return self.widgets
        ours = [i.name for i in spec.inputs if i.is_widget and i.name not in self.fixed]
        return tuple(self.theirs(name) for name in ours)

    def output_names(self, spec: NodeSpec) -> tuple[str | None, ...]:
        """Our output name for each ComfyUI output index."""
        if self.outputs is not None:
            return self.outputs
        return tuple(output.name for output in spec.outputs)


def _entry(comfy_class: str, node: str, **details: object) -> ClassMapping:
    if "rename" in details:
        details["rename"] = MappingProxyType(dict(details["rename"]))  # type: ignore[call-overload]
    return ClassMapping(comfy_class, node, **details)  # type: ignore[arg-type]


# Schedules ComfyUI's samplers don't list (its AlignYourStepsScheduler is a node of its own).
_OUR_SCHEDULES: Final = MappingProxyType({"scheduler": ("align_your_steps",)})

# fmt: off
CLASSES: Final[tuple[ClassMapping, ...]] = (
    _entry("CheckpointLoaderSimple", "loaders.checkpoint", rename={"ckpt_name": "checkpoint"},
           fixed={"prediction": "auto", "weight_dtype": "default"}),
    _entry("LoraLoader", "loaders.lora", rename={"lora_name": "lora"}),
    _entry("CLIPTextEncode", "conditioning.encode_prompt", fixed={"weighting": "comfy"}, approximates=("weighting",)),
    _entry("CLIPTextEncodeSDXL", "conditioning.encode_prompt_sdxl", fixed={"weighting": "comfy"},
           approximates=("weighting",)),
    _entry("CLIPTextEncodeSDXLRefiner", "conditioning.encode_prompt_sdxl_refiner", fixed={"weighting": "comfy"},
           approximates=("weighting",)),
    _entry("EmptyLatentImage", "latent.empty", rename={"batch_size": "batch"}, ours_only=("model",)),
    _entry("CLIPTextEncodeSD3", "conditioning.encode_prompt_sd3", fixed={"weighting": "comfy"},
           approximates=("weighting",)),
    _entry("CLIPTextEncodeFlux", "conditioning.encode_prompt_flux", fixed={"weighting": "comfy"},
           approximates=("weighting",)),
    _entry("EmptySD3LatentImage", "latent.empty_sd3", rename={"batch_size": "batch"}),
    _entry("KSampler", "sampling.ksampler", rename={"sampler_name": "sampler", "latent_image": "latent"}, seeds=("seed",),
           ours_only_values=_OUR_SCHEDULES),
    _entry("VAEDecode", "image.vae_decode", rename={"samples": "latent"}, sockets=("samples", "vae")),
    _entry("VAEEncode", "image.vae_encode", rename={"pixels": "image"}, sockets=("pixels", "vae")),
    _entry("LoadImage", "image.load", uploads=("image",)),
    _entry("SaveImage", "image.save"),
    _entry("PreviewImage", "image.preview"),
    _entry("SaveLatent", "latent.save", rename={"samples": "latent"}),
    _entry("LoadLatent", "latent.load", ours_only=("model",)),
    # ComfyUI's primitive value nodes that run (the editor-only PrimitiveNode imports as these too).
    _entry("PrimitiveInt", "utility.int", seeds=("value",)),
    _entry("PrimitiveFloat", "utility.float"),
    _entry("PrimitiveString", "utility.string"),
    _entry("PrimitiveStringMultiline", "utility.string"),
    _entry("PrimitiveBoolean", "utility.boolean"),
    _entry("LatentUpscale", "latent.upscale", rename={"samples": "latent", "upscale_method": "method"},
           widgets=("upscale_method", "width", "height", "crop"), neutral={"crop": ("disabled",)}),
    # ComfyUI blends samples1 * f + samples2 * (1 - f); our interpolation goes from a to b.
    _entry("LatentBlend", "latent.interpolate", rename={"samples1": "b", "samples2": "a", "blend_factor": "ratio"},
           widgets=("blend_factor", "blend_mode"), fixed={"mode": "lerp"}, neutral={"blend_mode": ("normal",)},
           sockets=("samples1", "samples2"), trailing=("blend_mode",)),  # ComfyUI 0.8 dropped blend_mode
    # Loaders. ComfyUI finds a VAE's latent scale from the model it decodes for; ours may be told.
    _entry("VAELoader", "loaders.vae", rename={"vae_name": "vae"}, fixed={"family": "auto"}, approximates=("family",)),
    _entry("CLIPSetLastLayer", "loaders.clip_set_last_layer"),
    _entry("LoraLoaderModelOnly", "loaders.lora_model_only", rename={"lora_name": "lora"}),
    _entry("CheckpointSave", "loaders.checkpoint_save"),
    # ComfyUI's weight_dtype values are all ours too; ours adds fp32 / fp16 / bf16 storage.
    _entry("UNETLoader", "loaders.unet", rename={"unet_name": "unet"}, fixed={"prediction": "auto"},
           shared_values={"weight_dtype": ("default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")},
           trailing=("weight_dtype",)),
    # `type` and then `device` came in later versions: older files store the widgets before them.
    _entry("CLIPLoader", "loaders.clip", rename={"clip_name": "text_encoder"}, widgets=("clip_name", "type", "device"),
           shared_values={"type": ("stable_diffusion", "sd3")}, neutral={"device": ("default",)},
           trailing=("type", "device")),
    _entry("DualCLIPLoader", "loaders.dual_clip", rename={"clip_name1": "text_encoder_1", "clip_name2": "text_encoder_2"},
           widgets=("clip_name1", "clip_name2", "type", "device"), shared_values={"type": ("sdxl", "sd3", "flux")},
           neutral={"device": ("default",)}, trailing=("type", "device")),
    _entry("TripleCLIPLoader", "loaders.triple_clip",
           rename={"clip_name1": "text_encoder_1", "clip_name2": "text_encoder_2", "clip_name3": "text_encoder_3"}),
    # Masks and inpainting.
    _entry("SolidMask", "mask.solid"),
    _entry("InvertMask", "mask.invert"),
    _entry("GrowMask", "mask.grow"),
    _entry("FeatherMask", "mask.feather"),
    _entry("ThresholdMask", "mask.threshold"),
    _entry("MaskComposite", "mask.composite"),
    _entry("CropMask", "mask.crop"),
    _entry("ImageToMask", "mask.from_image"),
    _entry("MaskToImage", "mask.to_image"),
    _entry("ImageColorToMask", "mask.from_color"),
    _entry("VAEEncodeForInpaint", "latent.vae_encode_for_inpaint", rename={"pixels": "image"},
           sockets=("pixels", "vae", "mask")),
    _entry("SetLatentNoiseMask", "latent.set_noise_mask", rename={"samples": "latent"}),
    _entry("ImagePadForOutpaint", "image.pad_for_outpaint"),
    # Conditioning.
    _entry("ConditioningCombine", "conditioning.combine"),
    _entry("ConditioningConcat", "conditioning.concat"),
    _entry("ConditioningAverage", "conditioning.average"),
    _entry("ConditioningSetArea", "conditioning.set_area"),
    _entry("ConditioningSetAreaPercentage", "conditioning.set_area_percentage"),
    _entry("ConditioningSetAreaStrength", "conditioning.set_area_strength"),
    _entry("ConditioningSetMask", "conditioning.set_mask"),
    _entry("ConditioningSetTimestepRange", "conditioning.set_timestep_range"),
    _entry("ConditioningZeroOut", "conditioning.zero_out"),
    # Sampling. KSamplerAdvanced's two switches are "enable"/"disable" COMBOs; ours are BOOLEANs.
    _entry("KSamplerAdvanced", "sampling.ksampler_advanced",
           rename={"noise_seed": "seed", "sampler_name": "sampler", "latent_image": "latent"}, seeds=("noise_seed",),
           booleans={"add_noise": ("enable", "disable"), "return_with_leftover_noise": ("enable", "disable")},
           ours_only_values=_OUR_SCHEDULES),
    _entry("BasicScheduler", "sampling.basic_scheduler", ours_only_values=_OUR_SCHEDULES),
    _entry("KarrasScheduler", "sampling.karras_scheduler"),
    _entry("ExponentialScheduler", "sampling.exponential_scheduler"),
    _entry("SplitSigmas", "sampling.split_sigmas"),
    _entry("SplitSigmasDenoise", "sampling.split_sigmas_denoise"),
    _entry("FlipSigmas", "sampling.flip_sigmas"),
    _entry("KSamplerSelect", "sampling.sampler_select", rename={"sampler_name": "sampler"}),
    _entry("CFGGuider", "sampling.cfg_guider"),
    _entry("BasicGuider", "sampling.basic_guider"),
    # Model sampling: how a model maps sigmas (discrete eps / v, rectified-flow shift).
    _entry("ModelSamplingDiscrete", "model.model_sampling_discrete"),
    _entry("ModelSamplingSD3", "model.model_sampling_sd3"),
    _entry("ModelSamplingFlux", "model.model_sampling_flux"),
    _entry("FluxGuidance", "conditioning.flux_guidance"),
    _entry("RandomNoise", "sampling.random_noise", rename={"noise_seed": "seed"}, seeds=("noise_seed",)),
    _entry("DisableNoise", "sampling.disable_noise"),
    _entry("SamplerCustom", "sampling.sampler_custom", rename={"noise_seed": "seed", "latent_image": "latent"},
           seeds=("noise_seed",)),
    _entry("SamplerCustomAdvanced", "sampling.sampler_custom_advanced", rename={"latent_image": "latent"}),
    # Image tools.
    _entry("ImageScale", "image.scale"),
    _entry("ImageScaleBy", "image.scale_by"),
    _entry("ImageScaleToTotalPixels", "image.scale_to_total_pixels", trailing=("resolution_steps",)),
    _entry("ImageCrop", "image.crop"),
    _entry("ImageFlip", "image.flip"),
    _entry("ImageRotate", "image.rotate"),
    _entry("ImageInvert", "image.invert"),
    _entry("ImageBlend", "image.blend"),
    _entry("ImageBlur", "image.blur"),
    _entry("ImageSharpen", "image.sharpen"),
    _entry("ImageCompositeMasked", "image.composite_masked"),
    _entry("ImageBatch", "image.batch"),
    _entry("ImageFromBatch", "image.from_batch"),
    _entry("RepeatImageBatch", "image.repeat_batch"),
    # Preprocessors.
    _entry("Canny", "preprocess.canny"),
    # Latent tools.
    _entry("LatentComposite", "latent.composite"),
    _entry("LatentCompositeMasked", "latent.composite_masked"),
    _entry("LatentBatch", "latent.batch"),
    _entry("LatentFromBatch", "latent.from_batch"),
    _entry("RepeatLatentBatch", "latent.repeat_batch"),
    _entry("LatentCrop", "latent.crop"),
    _entry("LatentFlip", "latent.flip"),
    _entry("LatentRotate", "latent.rotate"),
    _entry("LatentUpscaleBy", "latent.upscale_by"),
    # IP-Adapter. ComfyUI core's CLIP vision nodes (files from before crop existed center-crop);
    # IPAdapterModelLoader is ComfyUI_IPAdapter_plus's.
    _entry("CLIPVisionLoader", "clip_vision.loader"),
    _entry("CLIPVisionEncode", "clip_vision.encode", trailing=("crop",)),
    _entry("IPAdapterModelLoader", "ipadapter.loader"),
    # IPAdapter Advanced (ComfyUI_IPAdapter_plus): our Apply IP-Adapter implements the linear
    # weight type and "V only" scaling (diffusers' IP-Adapter); it refuses an attn_mask.
    _entry("IPAdapterAdvanced", "ipadapter.apply",
           widgets=("weight", "weight_type", "combine_embeds", "start_at", "end_at", "embeds_scaling"),
           neutral={"weight_type": ("linear",), "embeds_scaling": ("V only",)}),
    _entry("LatentAdd", "latent.add"),
    _entry("LatentSubtract", "latent.subtract"),
    _entry("LatentMultiply", "latent.multiply"),
    _entry("ControlNetLoader", "loaders.controlnet"),
    _entry("ControlNetApplyAdvanced", "conditioning.controlnet_apply_advanced"),
    _entry("ControlNetApply", "conditioning.controlnet_apply"),
    _entry("SetUnionControlNetType", "conditioning.controlnet_union_type"),
    _entry("UpscaleModelLoader", "loaders.upscale_model"),
    _entry("ImageUpscaleWithModel", "image.upscale_with_model", fixed={"tile_size": 512, "overlap": 32},
           approximates=("tile_size", "overlap")),
    _entry("VAEDecodeTiled", "image.vae_decode_tiled", rename={"samples": "latent"}, sockets=("samples", "vae"),
           trailing=("temporal_size", "temporal_overlap")),
    _entry("VAEEncodeTiled", "image.vae_encode_tiled", rename={"pixels": "image"}, sockets=("pixels", "vae"),
           trailing=("temporal_size", "temporal_overlap")),
)
# fmt: on

BY_CLASS: Final[Mapping[str, ClassMapping]] = MappingProxyType({m.comfy_class: m for m in CLASSES})
# Export picks the first entry naming a node, so the table's order decides ties.
BY_NODE: Final[Mapping[str, ClassMapping]] = MappingProxyType(
    {m.node: m for m in reversed(CLASSES)}
)

# ComfyUI's editor-only classes: they never reach the API format, and import turns them into
# our own editor features (reroute points, notes, primitive values) instead of nodes that run.
REROUTE: Final = "Reroute"
NOTES: Final = frozenset({"Note", "MarkdownNote"})
PRIMITIVE: Final = "PrimitiveNode"
SEED_CONTROLS: Final = ("fixed", "increment", "decrement", "randomize")

# Node modes: ComfyUI's numbers and our names. Mode 1 ("on trigger") runs like 0 in ComfyUI's
# executor for workflows without trigger nodes, so it imports as "run".
MODES_FROM_COMFY: Final[Mapping[int, str]] = MappingProxyType(
    {0: "run", 1: "run", 2: "mute", 4: "bypass"}
)
MODES_TO_COMFY: Final[Mapping[str, int]] = MappingProxyType({"run": 0, "mute": 2, "bypass": 4})
