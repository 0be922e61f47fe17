"""Every class in the table against ComfyUI's own input lists, and back out through export.

`COMFY` holds, per class, ComfyUI 0.8.0's inputs in its `INPUT_TYPES` order (`name:TYPE` for a
socket, a bare name for a widget, `?` for an optional input) and its output types, as its
`/object_info` reports them. They are facts about ComfyUI's format, typed in here; the table
must agree with them: the same input names (the table's renames applied), the same widget
order (what editor files' `widgets_values` follow), the same socket and output types. Inputs
listed in an entry's `trailing` that 0.8.0 lacks (it dropped LatentBlend's blend_mode) are
allowed in ours: files from other versions hold them.

The export checks use `tests/interop/test_mapping.py`'s cases: a class imported from an API
prompt exports back to the same inputs, and from an editor file back to the same
`widgets_values`.
"""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.export_common import VALUE_NODES
from latentloom.interop.comfy.exporter import export_api, export_editor
from latentloom.interop.comfy.mapping import BY_CLASS, CLASSES
from latentloom.interop.comfy.object_info import object_info
from tests.interop.test_mapping import CASES, editor_graph, upstream_api

# fmt: off
COMFY: dict[str, tuple[str, str]] = {
    "CheckpointLoaderSimple": ("ckpt_name", "MODEL CLIP VAE"),
    "LoraLoader": ("model:MODEL clip:CLIP lora_name strength_model strength_clip", "MODEL CLIP"),
    "CLIPTextEncode": ("text clip:CLIP", "CONDITIONING"),
    "CLIPTextEncodeSDXL": (
        "clip:CLIP width height crop_w crop_h target_width target_height text_g text_l", "CONDITIONING",
    ),
    "CLIPTextEncodeSDXLRefiner": ("ascore width height text clip:CLIP", "CONDITIONING"),
    "EmptyLatentImage": ("width height batch_size", "LATENT"),
    "KSampler": ("model:MODEL seed steps cfg sampler_name scheduler positive:CONDITIONING negative:CONDITIONING latent_image:LATENT denoise", "LATENT"),
    "VAEDecode": ("samples:LATENT vae:VAE", "IMAGE"),
    "VAEEncode": ("pixels:IMAGE vae:VAE", "LATENT"),
    "LoadImage": ("image", "IMAGE MASK"),
    "SaveImage": ("images:IMAGE filename_prefix", ""),
    "PreviewImage": ("images:IMAGE", ""),
    "SaveLatent": ("samples:LATENT filename_prefix", ""),
    "LoadLatent": ("latent", "LATENT"),
    "PrimitiveInt": ("value", "INT"),
    "PrimitiveFloat": ("value", "FLOAT"),
    "PrimitiveString": ("value", "STRING"),
    "PrimitiveStringMultiline": ("value", "STRING"),
    "PrimitiveBoolean": ("value", "BOOLEAN"),
    "LatentUpscale": ("samples:LATENT upscale_method width height crop", "LATENT"),
    "LatentBlend": ("samples1:LATENT samples2:LATENT blend_factor", "LATENT"),
    "VAELoader": ("vae_name", "VAE"),
    "CLIPSetLastLayer": ("clip:CLIP stop_at_clip_layer", "CLIP"),
    "LoraLoaderModelOnly": ("model:MODEL lora_name strength_model", "MODEL"),
    "CheckpointSave": ("model:MODEL clip:CLIP vae:VAE filename_prefix", ""),
    "UNETLoader": ("unet_name weight_dtype", "MODEL"),
    "CLIPLoader": ("clip_name type ?device", "CLIP"),
    "DualCLIPLoader": ("clip_name1 clip_name2 type ?device", "CLIP"),
    "SolidMask": ("value width height", "MASK"),
    "InvertMask": ("mask:MASK", "MASK"),
    "GrowMask": ("mask:MASK expand tapered_corners", "MASK"),
    "FeatherMask": ("mask:MASK left top right bottom", "MASK"),
    "ThresholdMask": ("mask:MASK value", "MASK"),
    "MaskComposite": ("destination:MASK source:MASK x y operation", "MASK"),
    "CropMask": ("mask:MASK x y width height", "MASK"),
    "ImageToMask": ("image:IMAGE channel", "MASK"),
    "MaskToImage": ("mask:MASK", "IMAGE"),
    "ImageColorToMask": ("image:IMAGE color", "MASK"),
    "VAEEncodeForInpaint": ("pixels:IMAGE vae:VAE mask:MASK grow_mask_by", "LATENT"),
    "SetLatentNoiseMask": ("samples:LATENT mask:MASK", "LATENT"),
    "ImagePadForOutpaint": ("image:IMAGE left top right bottom feathering", "IMAGE MASK"),
    "ConditioningCombine": ("conditioning_1:CONDITIONING conditioning_2:CONDITIONING", "CONDITIONING"),
    "ConditioningConcat": ("conditioning_to:CONDITIONING conditioning_from:CONDITIONING", "CONDITIONING"),
    "ConditioningAverage": ("conditioning_to:CONDITIONING conditioning_from:CONDITIONING conditioning_to_strength", "CONDITIONING"),
    "ConditioningSetArea": ("conditioning:CONDITIONING width height x y strength", "CONDITIONING"),
    "ConditioningSetAreaPercentage": ("conditioning:CONDITIONING width height x y strength", "CONDITIONING"),
    "ConditioningSetAreaStrength": ("conditioning:CONDITIONING strength", "CONDITIONING"),
    "ConditioningSetMask": ("conditioning:CONDITIONING mask:MASK strength set_cond_area", "CONDITIONING"),
    "ConditioningSetTimestepRange": ("conditioning:CONDITIONING start end", "CONDITIONING"),
    "ConditioningZeroOut": ("conditioning:CONDITIONING", "CONDITIONING"),
    "KSamplerAdvanced": ("model:MODEL add_noise noise_seed steps cfg sampler_name scheduler positive:CONDITIONING negative:CONDITIONING latent_image:LATENT start_at_step end_at_step return_with_leftover_noise", "LATENT"),
    "BasicScheduler": ("model:MODEL scheduler steps denoise", "SIGMAS"),
    "KarrasScheduler": ("steps sigma_max sigma_min rho", "SIGMAS"),
    "ExponentialScheduler": ("steps sigma_max sigma_min", "SIGMAS"),
    "SplitSigmas": ("sigmas:SIGMAS step", "SIGMAS SIGMAS"),
    "SplitSigmasDenoise": ("sigmas:SIGMAS denoise", "SIGMAS SIGMAS"),
    "FlipSigmas": ("sigmas:SIGMAS", "SIGMAS"),
    "KSamplerSelect": ("sampler_name", "SAMPLER"),
    "CFGGuider": ("model:MODEL positive:CONDITIONING negative:CONDITIONING cfg", "GUIDER"),
    "BasicGuider": ("model:MODEL conditioning:CONDITIONING", "GUIDER"),
    "RandomNoise": ("noise_seed", "NOISE"),
    "DisableNoise": ("", "NOISE"),
    "SamplerCustom": ("model:MODEL add_noise noise_seed cfg positive:CONDITIONING negative:CONDITIONING sampler:SAMPLER sigmas:SIGMAS latent_image:LATENT", "LATENT LATENT"),
    "SamplerCustomAdvanced": ("noise:NOISE guider:GUIDER sampler:SAMPLER sigmas:SIGMAS latent_image:LATENT", "LATENT LATENT"),
    "ImageScale": ("image:IMAGE upscale_method width height crop", "IMAGE"),
    "ImageScaleBy": ("image:IMAGE upscale_method scale_by", "IMAGE"),
    "ImageScaleToTotalPixels": ("image:IMAGE upscale_method megapixels resolution_steps", "IMAGE"),
    "ImageCrop": ("image:IMAGE width height x y", "IMAGE"),
    "ImageFlip": ("image:IMAGE flip_method", "IMAGE"),
    "ImageRotate": ("image:IMAGE rotation", "IMAGE"),
    "ImageInvert": ("image:IMAGE", "IMAGE"),
    "ImageBlend": ("image1:IMAGE image2:IMAGE blend_factor blend_mode", "IMAGE"),
    "ImageBlur": ("image:IMAGE blur_radius sigma", "IMAGE"),
    "ImageSharpen": ("image:IMAGE sharpen_radius sigma alpha", "IMAGE"),
    "ImageCompositeMasked": ("destination:IMAGE source:IMAGE x y resize_source ?mask:MASK", "IMAGE"),
    "ImageBatch": ("image1:IMAGE image2:IMAGE", "IMAGE"),
    "ImageFromBatch": ("image:IMAGE batch_index length", "IMAGE"),
    "RepeatImageBatch": ("image:IMAGE amount", "IMAGE"),
    "Canny": ("image:IMAGE low_threshold high_threshold", "IMAGE"),
    "LatentComposite": ("samples_to:LATENT samples_from:LATENT x y feather", "LATENT"),
    "LatentCompositeMasked": ("destination:LATENT source:LATENT x y resize_source ?mask:MASK", "LATENT"),
    "LatentBatch": ("samples1:LATENT samples2:LATENT", "LATENT"),
    "LatentFromBatch": ("samples:LATENT batch_index length", "LATENT"),
    "RepeatLatentBatch": ("samples:LATENT amount", "LATENT"),
    "LatentCrop": ("samples:LATENT width height x y", "LATENT"),
    "LatentFlip": ("samples:LATENT flip_method", "LATENT"),
    "LatentRotate": ("samples:LATENT rotation", "LATENT"),
    "LatentUpscaleBy": ("samples:LATENT upscale_method scale_by", "LATENT"),
    "LatentAdd": ("samples1:LATENT samples2:LATENT", "LATENT"),
    "LatentSubtract": ("samples1:LATENT samples2:LATENT", "LATENT"),
    "LatentMultiply": ("samples:LATENT multiplier", "LATENT"),
    "CLIPVisionLoader": ("clip_name", "CLIP_VISION"),
    "CLIPVisionEncode": ("clip_vision:CLIP_VISION image:IMAGE crop", "CLIP_VISION_OUTPUT"),
    "IPAdapterModelLoader": ("ipadapter_file", "IPADAPTER"),  # ComfyUI_IPAdapter_plus's, not core's
    "ControlNetLoader": ("control_net_name", "CONTROL_NET"),
    "ControlNetApplyAdvanced": (
        "positive:CONDITIONING negative:CONDITIONING control_net:CONTROL_NET image:IMAGE strength start_percent "
        "end_percent ?vae:VAE",
        "CONDITIONING CONDITIONING",
    ),
    "ControlNetApply": ("conditioning:CONDITIONING control_net:CONTROL_NET image:IMAGE strength", "CONDITIONING"),
    "SetUnionControlNetType": ("control_net:CONTROL_NET type", "CONTROL_NET"),
    "TripleCLIPLoader": ("clip_name1 clip_name2 clip_name3", "CLIP"),
    "CLIPTextEncodeSD3": ("clip:CLIP clip_l clip_g t5xxl empty_padding", "CONDITIONING"),
    "CLIPTextEncodeFlux": ("clip:CLIP clip_l t5xxl guidance", "CONDITIONING"),
    "FluxGuidance": ("conditioning:CONDITIONING guidance", "CONDITIONING"),
    "EmptySD3LatentImage": ("width height batch_size", "LATENT"),
    "ModelSamplingDiscrete": ("model:MODEL sampling zsnr", "MODEL"),
    "ModelSamplingSD3": ("model:MODEL shift", "MODEL"),
    "ModelSamplingFlux": ("model:MODEL max_shift base_shift width height", "MODEL"),
    "IPAdapterAdvanced": (  # ComfyUI_IPAdapter_plus's
        "model:MODEL ipadapter:IPADAPTER image:IMAGE weight weight_type combine_embeds start_at end_at "
        "embeds_scaling ?image_negative:IMAGE ?attn_mask:MASK ?clip_vision:CLIP_VISION",
        "MODEL",
    ),
    "UpscaleModelLoader": ("model_name", "UPSCALE_MODEL"),
    "ImageUpscaleWithModel": ("upscale_model:UPSCALE_MODEL image:IMAGE", "IMAGE"),
    "VAEDecodeTiled": ("samples:LATENT vae:VAE tile_size overlap temporal_size temporal_overlap", "IMAGE"),
    "VAEEncodeTiled": ("pixels:IMAGE vae:VAE tile_size overlap temporal_size temporal_overlap", "LATENT"),
}
# fmt: on

# ComfyUI's default titles (its display names) where they differ from the class name: an API
# prompt's `_meta.title` always holds one, and import must not take it for the user's title.
TITLES: dict[str, str] = {
    "CheckpointLoaderSimple": "Load Checkpoint",
    "LoraLoader": "Load LoRA",
    "CLIPTextEncode": "CLIP Text Encode (Prompt)",
    "EmptyLatentImage": "Empty Latent Image",
    "VAEDecode": "VAE Decode",
    "VAEEncode": "VAE Encode",
    "LoadImage": "Load Image",
    "SaveImage": "Save Image",
    "PreviewImage": "Preview Image",
    "PrimitiveInt": "Int",
    "PrimitiveFloat": "Float",
    "PrimitiveString": "String",
    "PrimitiveStringMultiline": "String (Multiline)",
    "PrimitiveBoolean": "Boolean",
    "LatentUpscale": "Upscale Latent",
    "LatentBlend": "Latent Blend",
    "VAELoader": "Load VAE",
    "CLIPSetLastLayer": "CLIP Set Last Layer",
    "CheckpointSave": "Save Checkpoint",
    "UNETLoader": "Load Diffusion Model",
    "CLIPLoader": "Load CLIP",
    "GrowMask": "Grow Mask",
    "ImageToMask": "Convert Image to Mask",
    "MaskToImage": "Convert Mask to Image",
    "VAEEncodeForInpaint": "VAE Encode (for Inpainting)",
    "SetLatentNoiseMask": "Set Latent Noise Mask",
    "ImagePadForOutpaint": "Pad Image for Outpainting",
    "ConditioningCombine": "Conditioning (Combine)",
    "ConditioningConcat": "Conditioning (Concat)",
    "ConditioningSetArea": "Conditioning (Set Area)",
    "ConditioningSetAreaPercentage": "Conditioning (Set Area with Percentage)",
    "ConditioningSetMask": "Conditioning (Set Mask)",
    "KSamplerAdvanced": "KSampler (Advanced)",
    "ImageScale": "Upscale Image",
    "ImageScaleBy": "Upscale Image By",
    "ImageScaleToTotalPixels": "Scale Image to Total Pixels",
    "ImageCrop": "Image Crop",
    "ImageInvert": "Invert Image",
    "ImageBlend": "Image Blend",
    "ImageBlur": "Image Blur",
    "ImageSharpen": "Image Sharpen",
    "ImageBatch": "Batch Images",
    "LatentComposite": "Latent Composite",
    "LatentFromBatch": "Latent From Batch",
    "RepeatLatentBatch": "Repeat Latent Batch",
    "LatentCrop": "Crop Latent",
    "LatentFlip": "Flip Latent",
    "LatentRotate": "Rotate Latent",
    "LatentUpscaleBy": "Upscale Latent By",
    "CLIPVisionLoader": "Load CLIP Vision",
    "CLIPVisionEncode": "CLIP Vision Encode",
    "IPAdapterModelLoader": "IPAdapter Model Loader",
    "ControlNetLoader": "Load ControlNet Model",
    "ControlNetApplyAdvanced": "Apply ControlNet",
    "ControlNetApply": "Apply ControlNet (OLD)",
    "IPAdapterAdvanced": "IPAdapter Advanced",
    "UpscaleModelLoader": "Load Upscale Model",
    "ImageUpscaleWithModel": "Upscale Image (using Model)",
    "VAEDecodeTiled": "VAE Decode (Tiled)",
    "VAEEncodeTiled": "VAE Encode (Tiled)",
}


class ComfyInput:
    def __init__(self, word: str) -> None:
        self.optional = word.startswith("?")
        self.name, _, socket_type = word.lstrip("?").partition(":")
        self.socket_type = socket_type or None  # None: a widget


def comfy_inputs(comfy_class: str) -> list[ComfyInput]:
    return [ComfyInput(word) for word in COMFY[comfy_class][0].split()]


def dropped_since(comfy_class: str) -> set[str]:
    """Trailing widgets of the table that ComfyUI 0.8.0's class no longer has."""
    return set(BY_CLASS[comfy_class].trailing) - {i.name for i in comfy_inputs(comfy_class)}


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return object_info(default_registry(), lambda folder: [f"in-{folder}.safetensors"])


def test_every_class_has_comfyui_facts() -> None:
    assert sorted(COMFY) == sorted(m.comfy_class for m in CLASSES)


@pytest.mark.parametrize("comfy_class", sorted(COMFY))
def test_object_info_offers_comfyui_inputs_and_outputs(
    comfy_class: str, info: dict[str, Any]
) -> None:
    theirs = comfy_inputs(comfy_class)
    dropped = dropped_since(comfy_class)
    ours = info[comfy_class]["input"]
    offered = {**ours["required"], **ours.get("optional", {})}
    assert sorted(n for n in offered if n not in dropped) == sorted(i.name for i in theirs)
    for found in theirs:
        kind = offered[found.name][0]
        if found.socket_type is not None:
            assert kind == found.socket_type, found.name
        else:
            assert isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")
        if found.optional and found.name not in BY_CLASS[comfy_class].neutral:
            assert found.name in ours.get("optional", {}), found.name
    expected_outputs = COMFY[comfy_class][1].split()
    assert info[comfy_class]["output"] == expected_outputs


@pytest.mark.parametrize("comfy_class", sorted(COMFY))
def test_widget_order_is_comfyuis(comfy_class: str) -> None:
    entry = BY_CLASS[comfy_class]
    spec = default_registry().get(entry.node)
    assert spec is not None
    widgets = [i.name for i in comfy_inputs(comfy_class) if i.socket_type is None]
    order = entry.widget_order(spec)
    assert [n for n in order if n not in dropped_since(comfy_class)] == widgets
    # Trailing widgets are the last ones: shorter files store exactly the ones before them.
    assert order[len(order) - len(entry.trailing) :] == entry.trailing


@pytest.mark.parametrize("comfy_class", sorted(COMFY))
def test_comfyuis_default_title_is_not_taken_for_a_users(comfy_class: str) -> None:
    case = CASES[comfy_class]
    title = TITLES.get(comfy_class, comfy_class)
    node = {"class_type": comfy_class, "inputs": case.api, "_meta": {"title": title}}
    imported = import_api_prompt({**upstream_api(), "1": node}).workflow["nodes"]["1"]
    assert "title" not in imported


EXPORTED = sorted(c for c in CASES if BY_CLASS[c].node not in VALUE_NODES)


@pytest.mark.parametrize("comfy_class", EXPORTED)
def test_class_exports_back_to_the_api_inputs_it_came_from(comfy_class: str) -> None:
    case = CASES[comfy_class]
    prompt = {**upstream_api(), "1": {"class_type": comfy_class, "inputs": case.api}}
    registry = default_registry()
    workflow = parse_workflow(import_api_prompt(prompt, registry).workflow)
    exported, report = export_api(workflow, registry)
    assert report.unexportable == []
    assert exported["1"]["class_type"] == comfy_class
    assert exported["1"]["inputs"] == case.api


@pytest.mark.parametrize("comfy_class", EXPORTED)
def test_class_exports_back_to_the_widget_values_it_came_from(comfy_class: str) -> None:
    case = CASES[comfy_class]
    registry = default_registry()
    imported = import_editor_workflow(editor_graph(comfy_class, case), registry).workflow
    document, report = export_editor(parse_workflow(imported), registry)
    assert report.unexportable == []
    [node] = [n for n in document["nodes"] if n["id"] == 1]
    assert node["type"] == comfy_class
    assert node["widgets_values"] == case.widgets
    linked = {i["name"] for i in node["inputs"] if i["link"] is not None}
    assert linked == {name for name, value in case.api.items() if isinstance(value, list)}
    # Links name their target slot by position: the sockets must be in ComfyUI's order.
    sockets = [i.name for i in comfy_inputs(comfy_class) if i.socket_type is not None]
    assert [i["name"] for i in node["inputs"] if "widget" not in i] == sockets
