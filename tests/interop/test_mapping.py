"""The ComfyUI class table: every entry is sound, and every class imports as the table says.

Each class in `CLASSES` needs a case below (a new entry without one fails
`test_every_class_has_a_mapping_case`): its ComfyUI inputs as an API prompt and as editor
`widgets_values`, and the inputs our node must end up with. Socket inputs come from an
upstream placeholder node "99", so renamed sockets are checked too.
"""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.mapping import BY_CLASS, CLASSES, ClassMapping

UP = ["99", 0]  # a link from the upstream node, ComfyUI style
OURS_UP = {"node": "99", "output": "0"}  # the same link in our document (a placeholder's output)


class Case:
    def __init__(
        self, api: dict[str, Any], widgets: list[Any], ours: dict[str, Any], node_type: str
    ) -> None:
        self.api, self.widgets, self.ours, self.node_type = api, widgets, ours, node_type


CASES: dict[str, Case] = {
    "CheckpointLoaderSimple": Case(
        {"ckpt_name": "a.safetensors"}, ["a.safetensors"],
        {"checkpoint": "a.safetensors", "prediction": "auto", "weight_dtype": "default"},
        "loaders.checkpoint",
    ),
    "LoraLoader": Case(
        {"model": UP, "clip": UP, "lora_name": "l.safetensors", "strength_model": 0.8, "strength_clip": 0.5},
        ["l.safetensors", 0.8, 0.5],
        {"model": OURS_UP, "clip": OURS_UP, "lora": "l.safetensors", "strength_model": 0.8, "strength_clip": 0.5},
        "loaders.lora",
    ),
    "CLIPTextEncode": Case(
        {"text": "a cat", "clip": UP}, ["a cat"],
        {"text": "a cat", "clip": OURS_UP, "weighting": "comfy"},
        "conditioning.encode_prompt",
    ),
    "CLIPTextEncodeSD3": Case(
        {"clip": UP, "clip_l": "a cat", "clip_g": "a pet", "t5xxl": "a cat on a sofa", "empty_padding": "none"},
        ["a cat", "a pet", "a cat on a sofa", "none"],
        {"clip": OURS_UP, "clip_l": "a cat", "clip_g": "a pet", "t5xxl": "a cat on a sofa", "empty_padding": "none",
         "weighting": "comfy"},
        "conditioning.encode_prompt_sd3",
    ),
    "CLIPTextEncodeFlux": Case(
        {"clip": UP, "clip_l": "a cat", "t5xxl": "a cat on a sofa", "guidance": 2.5},
        ["a cat", "a cat on a sofa", 2.5],
        {"clip": OURS_UP, "clip_l": "a cat", "t5xxl": "a cat on a sofa", "guidance": 2.5, "weighting": "comfy"},
        "conditioning.encode_prompt_flux",
    ),
    "CLIPTextEncodeSDXL": Case(
        {"clip": UP, "width": 2048, "height": 1536, "crop_w": 8, "crop_h": 16, "target_width": 1024,
         "target_height": 768, "text_g": "a cat", "text_l": "a pet"},
        [2048, 1536, 8, 16, 1024, 768, "a cat", "a pet"],
        {"clip": OURS_UP, "width": 2048, "height": 1536, "crop_w": 8, "crop_h": 16, "target_width": 1024,
         "target_height": 768, "text_g": "a cat", "text_l": "a pet", "weighting": "comfy"},
        "conditioning.encode_prompt_sdxl",
    ),
    "CLIPTextEncodeSDXLRefiner": Case(
        {"ascore": 2.5, "width": 768, "height": 512, "text": "blurry", "clip": UP}, [2.5, 768, 512, "blurry"],
        {"ascore": 2.5, "width": 768, "height": 512, "text": "blurry", "clip": OURS_UP, "weighting": "comfy"},
        "conditioning.encode_prompt_sdxl_refiner",
    ),
    "EmptyLatentImage": Case(
        {"width": 512, "height": 768, "batch_size": 2}, [512, 768, 2],
        {"width": 512, "height": 768, "batch": 2}, "latent.empty",
    ),
    "EmptySD3LatentImage": Case(
        {"width": 1024, "height": 768, "batch_size": 2}, [1024, 768, 2],
        {"width": 1024, "height": 768, "batch": 2}, "latent.empty_sd3",
    ),
    "KSampler": Case(
        {"model": UP, "positive": UP, "negative": UP, "latent_image": UP, "seed": 5, "steps": 20,
         "cfg": 7.5, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 0.9},
        [5, "fixed", 20, 7.5, "dpmpp_2m", "karras", 0.9],
        {"model": OURS_UP, "positive": OURS_UP, "negative": OURS_UP, "latent": OURS_UP, "seed": 5,
         "steps": 20, "cfg": 7.5, "sampler": "dpmpp_2m", "scheduler": "karras", "denoise": 0.9},
        "sampling.ksampler",
    ),
    "VAEDecode": Case(
        {"samples": UP, "vae": UP}, [], {"latent": OURS_UP, "vae": OURS_UP}, "image.vae_decode"
    ),
    "VAEEncode": Case(
        {"pixels": UP, "vae": UP}, [], {"image": OURS_UP, "vae": OURS_UP}, "image.vae_encode"
    ),
    "LoadImage": Case(
        {"image": "x.png", "upload": "image"}, ["x.png", "image"], {"image": "x.png"}, "image.load"
    ),
    "SaveImage": Case(
        {"images": UP, "filename_prefix": "p"}, ["p"],
        {"images": OURS_UP, "filename_prefix": "p"}, "image.save",
    ),
    "PreviewImage": Case({"images": UP}, [], {"images": OURS_UP}, "image.preview"),
    "SaveLatent": Case(
        {"samples": UP, "filename_prefix": "latents/ComfyUI"}, ["latents/ComfyUI"],
        {"latent": OURS_UP, "filename_prefix": "latents/ComfyUI"}, "latent.save",
    ),
    "LoadLatent": Case({"latent": "x.latent"}, ["x.latent"], {"latent": "x.latent"}, "latent.load"),
    "PrimitiveInt": Case({"value": -3}, [-3, "fixed"], {"value": -3}, "utility.int"),
    "PrimitiveFloat": Case({"value": 0.5}, [0.5], {"value": 0.5}, "utility.float"),
    "PrimitiveString": Case({"value": "s"}, ["s"], {"value": "s"}, "utility.string"),
    "PrimitiveStringMultiline": Case({"value": "a\nb"}, ["a\nb"], {"value": "a\nb"}, "utility.string"),
    "PrimitiveBoolean": Case({"value": True}, [True], {"value": True}, "utility.boolean"),
    "LatentUpscale": Case(
        {"samples": UP, "upscale_method": "bicubic", "width": 256, "height": 128, "crop": "disabled"},
        ["bicubic", 256, 128, "disabled"],
        {"latent": OURS_UP, "method": "bicubic", "width": 256, "height": 128},
        "latent.upscale",
    ),
    # ComfyUI: samples1 * f + samples2 * (1 - f); ours: a + (b - a) * ratio, so samples1 is b.
    "LatentBlend": Case(
        {"samples1": ["99", 0], "samples2": ["98", 0], "blend_factor": 0.25, "blend_mode": "normal"},
        [0.25, "normal"],
        {"b": OURS_UP, "a": {"node": "98", "output": "0"}, "ratio": 0.25, "mode": "lerp"},
        "latent.interpolate",
    ),
    # Loaders.
    "VAELoader": Case({"vae_name": "v.safetensors"}, ["v.safetensors"],
                      {"vae": "v.safetensors", "family": "auto"}, "loaders.vae"),
    "CLIPSetLastLayer": Case({"clip": UP, "stop_at_clip_layer": -2}, [-2],
                             {"clip": OURS_UP, "stop_at_clip_layer": -2}, "loaders.clip_set_last_layer"),
    "LoraLoaderModelOnly": Case({"model": UP, "lora_name": "l.safetensors", "strength_model": 0.7},
                                ["l.safetensors", 0.7],
                                {"model": OURS_UP, "lora": "l.safetensors", "strength_model": 0.7},
                                "loaders.lora_model_only"),
    "CheckpointSave": Case({"model": UP, "clip": UP, "vae": UP, "filename_prefix": "checkpoints/m"},
                           ["checkpoints/m"],
                           {"model": OURS_UP, "clip": OURS_UP, "vae": OURS_UP, "filename_prefix": "checkpoints/m"},
                           "loaders.checkpoint_save"),
    "UNETLoader": Case({"unet_name": "u.safetensors", "weight_dtype": "default"}, ["u.safetensors", "default"],
                       {"unet": "u.safetensors", "weight_dtype": "default", "prediction": "auto"}, "loaders.unet"),
    "CLIPLoader": Case({"clip_name": "c.safetensors", "type": "stable_diffusion", "device": "default"},
                       ["c.safetensors", "stable_diffusion", "default"],
                       {"text_encoder": "c.safetensors", "type": "stable_diffusion"}, "loaders.clip"),
    "DualCLIPLoader": Case({"clip_name1": "l.safetensors", "clip_name2": "g.safetensors", "type": "sdxl",
                            "device": "default"},
                           ["l.safetensors", "g.safetensors", "sdxl", "default"],
                           {"text_encoder_1": "l.safetensors", "text_encoder_2": "g.safetensors", "type": "sdxl"},
                           "loaders.dual_clip"),
    "TripleCLIPLoader": Case({"clip_name1": "l.safetensors", "clip_name2": "g.safetensors", "clip_name3": "t5.safetensors"},
                             ["l.safetensors", "g.safetensors", "t5.safetensors"],
                             {"text_encoder_1": "l.safetensors", "text_encoder_2": "g.safetensors",
                              "text_encoder_3": "t5.safetensors"}, "loaders.triple_clip"),
    # Masks and inpainting.
    "SolidMask": Case({"value": 0.5, "width": 64, "height": 32}, [0.5, 64, 32],
                      {"value": 0.5, "width": 64, "height": 32}, "mask.solid"),
    "InvertMask": Case({"mask": UP}, [], {"mask": OURS_UP}, "mask.invert"),
    "GrowMask": Case({"mask": UP, "expand": -3, "tapered_corners": False}, [-3, False],
                     {"mask": OURS_UP, "expand": -3, "tapered_corners": False}, "mask.grow"),
    "FeatherMask": Case({"mask": UP, "left": 1, "top": 2, "right": 3, "bottom": 4}, [1, 2, 3, 4],
                        {"mask": OURS_UP, "left": 1, "top": 2, "right": 3, "bottom": 4}, "mask.feather"),
    "ThresholdMask": Case({"mask": UP, "value": 0.25}, [0.25], {"mask": OURS_UP, "value": 0.25}, "mask.threshold"),
    "MaskComposite": Case({"destination": UP, "source": ["98", 0], "x": 8, "y": 16, "operation": "xor"},
                          [8, 16, "xor"],
                          {"destination": OURS_UP, "source": {"node": "98", "output": "0"}, "x": 8, "y": 16,
                           "operation": "xor"}, "mask.composite"),
    "CropMask": Case({"mask": UP, "x": 1, "y": 2, "width": 30, "height": 40}, [1, 2, 30, 40],
                     {"mask": OURS_UP, "x": 1, "y": 2, "width": 30, "height": 40}, "mask.crop"),
    "ImageToMask": Case({"image": UP, "channel": "alpha"}, ["alpha"], {"image": OURS_UP, "channel": "alpha"},
                        "mask.from_image"),
    "MaskToImage": Case({"mask": UP}, [], {"mask": OURS_UP}, "mask.to_image"),
    "ImageColorToMask": Case({"image": UP, "color": 16711680}, [16711680], {"image": OURS_UP, "color": 16711680},
                             "mask.from_color"),
    "VAEEncodeForInpaint": Case({"pixels": UP, "vae": ["98", 0], "mask": UP, "grow_mask_by": 4}, [4],
                                {"vae": {"node": "98", "output": "0"}, "image": OURS_UP, "mask": OURS_UP,
                                 "grow_mask_by": 4}, "latent.vae_encode_for_inpaint"),
    "SetLatentNoiseMask": Case({"samples": UP, "mask": ["98", 0]}, [],
                               {"latent": OURS_UP, "mask": {"node": "98", "output": "0"}}, "latent.set_noise_mask"),
    "ImagePadForOutpaint": Case({"image": UP, "left": 8, "top": 0, "right": 16, "bottom": 24, "feathering": 10},
                                [8, 0, 16, 24, 10],
                                {"image": OURS_UP, "left": 8, "top": 0, "right": 16, "bottom": 24, "feathering": 10},
                                "image.pad_for_outpaint"),
    # Conditioning.
    "ConditioningCombine": Case({"conditioning_1": UP, "conditioning_2": ["98", 0]}, [],
                                {"conditioning_1": OURS_UP, "conditioning_2": {"node": "98", "output": "0"}},
                                "conditioning.combine"),
    "ConditioningConcat": Case({"conditioning_to": UP, "conditioning_from": ["98", 0]}, [],
                               {"conditioning_to": OURS_UP, "conditioning_from": {"node": "98", "output": "0"}},
                               "conditioning.concat"),
    "ConditioningAverage": Case({"conditioning_to": UP, "conditioning_from": UP, "conditioning_to_strength": 0.3},
                                [0.3], {"conditioning_to": OURS_UP, "conditioning_from": OURS_UP,
                                        "conditioning_to_strength": 0.3}, "conditioning.average"),
    "ConditioningSetArea": Case({"conditioning": UP, "width": 128, "height": 64, "x": 8, "y": 16, "strength": 0.9},
                                [128, 64, 8, 16, 0.9],
                                {"conditioning": OURS_UP, "width": 128, "height": 64, "x": 8, "y": 16,
                                 "strength": 0.9}, "conditioning.set_area"),
    "ConditioningSetAreaPercentage": Case(
        {"conditioning": UP, "width": 0.5, "height": 0.25, "x": 0.5, "y": 0.0, "strength": 1.5},
        [0.5, 0.25, 0.5, 0.0, 1.5],
        {"conditioning": OURS_UP, "width": 0.5, "height": 0.25, "x": 0.5, "y": 0.0, "strength": 1.5},
        "conditioning.set_area_percentage"),
    "ConditioningSetAreaStrength": Case({"conditioning": UP, "strength": 2.0}, [2.0],
                                        {"conditioning": OURS_UP, "strength": 2.0}, "conditioning.set_area_strength"),
    "ConditioningSetMask": Case({"conditioning": UP, "mask": ["98", 0], "strength": 0.8, "set_cond_area": "mask bounds"},
                                [0.8, "mask bounds"],
                                {"conditioning": OURS_UP, "mask": {"node": "98", "output": "0"}, "strength": 0.8,
                                 "set_cond_area": "mask bounds"}, "conditioning.set_mask"),
    "ConditioningSetTimestepRange": Case({"conditioning": UP, "start": 0.2, "end": 0.8}, [0.2, 0.8],
                                         {"conditioning": OURS_UP, "start": 0.2, "end": 0.8},
                                         "conditioning.set_timestep_range"),
    "ConditioningZeroOut": Case({"conditioning": UP}, [], {"conditioning": OURS_UP}, "conditioning.zero_out"),
    # Sampling. KSamplerAdvanced's "enable"/"disable" become our booleans.
    "KSamplerAdvanced": Case(
        {"model": UP, "add_noise": "disable", "noise_seed": 7, "steps": 30, "cfg": 6.5, "sampler_name": "dpmpp_2m",
         "scheduler": "karras", "positive": UP, "negative": UP, "latent_image": UP, "start_at_step": 10,
         "end_at_step": 10000, "return_with_leftover_noise": "enable"},
        ["disable", 7, "fixed", 30, 6.5, "dpmpp_2m", "karras", 10, 10000, "enable"],
        {"model": OURS_UP, "positive": OURS_UP, "negative": OURS_UP, "latent": OURS_UP, "add_noise": False,
         "seed": 7, "steps": 30, "cfg": 6.5, "sampler": "dpmpp_2m", "scheduler": "karras", "start_at_step": 10,
         "end_at_step": 10000, "return_with_leftover_noise": True},
        "sampling.ksampler_advanced"),
    "BasicScheduler": Case({"model": UP, "scheduler": "karras", "steps": 12, "denoise": 0.6}, ["karras", 12, 0.6],
                           {"model": OURS_UP, "scheduler": "karras", "steps": 12, "denoise": 0.6},
                           "sampling.basic_scheduler"),
    "KarrasScheduler": Case({"steps": 10, "sigma_max": 14.6, "sigma_min": 0.03, "rho": 5.0}, [10, 14.6, 0.03, 5.0],
                            {"steps": 10, "sigma_max": 14.6, "sigma_min": 0.03, "rho": 5.0},
                            "sampling.karras_scheduler"),
    "ExponentialScheduler": Case({"steps": 10, "sigma_max": 14.6, "sigma_min": 0.03}, [10, 14.6, 0.03],
                                 {"steps": 10, "sigma_max": 14.6, "sigma_min": 0.03},
                                 "sampling.exponential_scheduler"),
    "SplitSigmas": Case({"sigmas": UP, "step": 5}, [5], {"sigmas": OURS_UP, "step": 5}, "sampling.split_sigmas"),
    "SplitSigmasDenoise": Case({"sigmas": UP, "denoise": 0.4}, [0.4], {"sigmas": OURS_UP, "denoise": 0.4},
                               "sampling.split_sigmas_denoise"),
    "FlipSigmas": Case({"sigmas": UP}, [], {"sigmas": OURS_UP}, "sampling.flip_sigmas"),
    "KSamplerSelect": Case({"sampler_name": "dpmpp_2m"}, ["dpmpp_2m"], {"sampler": "dpmpp_2m"},
                           "sampling.sampler_select"),
    "CFGGuider": Case({"model": UP, "positive": UP, "negative": UP, "cfg": 5.0}, [5.0],
                      {"model": OURS_UP, "positive": OURS_UP, "negative": OURS_UP, "cfg": 5.0}, "sampling.cfg_guider"),
    "BasicGuider": Case({"model": UP, "conditioning": UP}, [], {"model": OURS_UP, "conditioning": OURS_UP},
                        "sampling.basic_guider"),
    "ModelSamplingDiscrete": Case({"model": UP, "sampling": "v_prediction", "zsnr": True}, ["v_prediction", True],
                                  {"model": OURS_UP, "sampling": "v_prediction", "zsnr": True},
                                  "model.model_sampling_discrete"),
    "ModelSamplingSD3": Case({"model": UP, "shift": 6.0}, [6.0], {"model": OURS_UP, "shift": 6.0},
                             "model.model_sampling_sd3"),
    "ModelSamplingFlux": Case({"model": UP, "max_shift": 1.2, "base_shift": 0.4, "width": 768, "height": 512},
                              [1.2, 0.4, 768, 512],
                              {"model": OURS_UP, "max_shift": 1.2, "base_shift": 0.4, "width": 768, "height": 512},
                              "model.model_sampling_flux"),
    "FluxGuidance": Case({"conditioning": UP, "guidance": 2.5}, [2.5], {"conditioning": OURS_UP, "guidance": 2.5},
                         "conditioning.flux_guidance"),
    "RandomNoise": Case({"noise_seed": 42}, [42, "fixed"], {"seed": 42}, "sampling.random_noise"),
    "DisableNoise": Case({}, [], {}, "sampling.disable_noise"),
    "SamplerCustom": Case(
        {"model": UP, "add_noise": False, "noise_seed": 3, "cfg": 4.0, "positive": UP, "negative": UP,
         "sampler": UP, "sigmas": UP, "latent_image": UP},
        [False, 3, "fixed", 4.0],
        {"model": OURS_UP, "add_noise": False, "seed": 3, "cfg": 4.0, "positive": OURS_UP, "negative": OURS_UP,
         "sampler": OURS_UP, "sigmas": OURS_UP, "latent": OURS_UP},
        "sampling.sampler_custom"),
    "SamplerCustomAdvanced": Case(
        {"noise": UP, "guider": UP, "sampler": UP, "sigmas": UP, "latent_image": UP}, [],
        {"noise": OURS_UP, "guider": OURS_UP, "sampler": OURS_UP, "sigmas": OURS_UP, "latent": OURS_UP},
        "sampling.sampler_custom_advanced"),
    # Image tools.
    "ImageScale": Case({"image": UP, "upscale_method": "lanczos", "width": 300, "height": 200, "crop": "center"},
                       ["lanczos", 300, 200, "center"],
                       {"image": OURS_UP, "upscale_method": "lanczos", "width": 300, "height": 200, "crop": "center"},
                       "image.scale"),
    "ImageScaleBy": Case({"image": UP, "upscale_method": "area", "scale_by": 0.5}, ["area", 0.5],
                         {"image": OURS_UP, "upscale_method": "area", "scale_by": 0.5}, "image.scale_by"),
    "ImageScaleToTotalPixels": Case({"image": UP, "upscale_method": "bilinear", "megapixels": 0.25,
                                     "resolution_steps": 8}, ["bilinear", 0.25, 8],
                                    {"image": OURS_UP, "upscale_method": "bilinear", "megapixels": 0.25,
                                     "resolution_steps": 8}, "image.scale_to_total_pixels"),
    "ImageCrop": Case({"image": UP, "width": 30, "height": 40, "x": 1, "y": 2}, [30, 40, 1, 2],
                      {"image": OURS_UP, "width": 30, "height": 40, "x": 1, "y": 2}, "image.crop"),
    "ImageFlip": Case({"image": UP, "flip_method": "y-axis: horizontally"}, ["y-axis: horizontally"],
                      {"image": OURS_UP, "flip_method": "y-axis: horizontally"}, "image.flip"),
    "ImageRotate": Case({"image": UP, "rotation": "90 degrees"}, ["90 degrees"],
                        {"image": OURS_UP, "rotation": "90 degrees"}, "image.rotate"),
    "ImageInvert": Case({"image": UP}, [], {"image": OURS_UP}, "image.invert"),
    "ImageBlend": Case({"image1": UP, "image2": ["98", 0], "blend_factor": 0.3, "blend_mode": "screen"},
                       [0.3, "screen"],
                       {"image1": OURS_UP, "image2": {"node": "98", "output": "0"}, "blend_factor": 0.3,
                        "blend_mode": "screen"}, "image.blend"),
    "ImageBlur": Case({"image": UP, "blur_radius": 5, "sigma": 2.0}, [5, 2.0],
                      {"image": OURS_UP, "blur_radius": 5, "sigma": 2.0}, "image.blur"),
    "ImageSharpen": Case({"image": UP, "sharpen_radius": 2, "sigma": 1.5, "alpha": 0.5}, [2, 1.5, 0.5],
                         {"image": OURS_UP, "sharpen_radius": 2, "sigma": 1.5, "alpha": 0.5}, "image.sharpen"),
    "ImageCompositeMasked": Case(
        {"destination": UP, "source": ["98", 0], "x": 8, "y": 4, "resize_source": True, "mask": UP},
        [8, 4, True],
        {"destination": OURS_UP, "source": {"node": "98", "output": "0"}, "x": 8, "y": 4, "resize_source": True,
         "mask": OURS_UP}, "image.composite_masked"),
    "ImageBatch": Case({"image1": UP, "image2": ["98", 0]}, [],
                       {"image1": OURS_UP, "image2": {"node": "98", "output": "0"}}, "image.batch"),
    "ImageFromBatch": Case({"image": UP, "batch_index": 1, "length": 2}, [1, 2],
                           {"image": OURS_UP, "batch_index": 1, "length": 2}, "image.from_batch"),
    "RepeatImageBatch": Case({"image": UP, "amount": 3}, [3], {"image": OURS_UP, "amount": 3}, "image.repeat_batch"),
    "Canny": Case({"image": UP, "low_threshold": 0.3, "high_threshold": 0.7}, [0.3, 0.7],
                  {"image": OURS_UP, "low_threshold": 0.3, "high_threshold": 0.7}, "preprocess.canny"),
    # Latent tools.
    "LatentComposite": Case({"samples_to": UP, "samples_from": ["98", 0], "x": 8, "y": 16, "feather": 8},
                            [8, 16, 8],
                            {"samples_to": OURS_UP, "samples_from": {"node": "98", "output": "0"}, "x": 8, "y": 16,
                             "feather": 8}, "latent.composite"),
    "LatentCompositeMasked": Case(
        {"destination": UP, "source": ["98", 0], "x": 0, "y": 8, "resize_source": False, "mask": UP},
        [0, 8, False],
        {"destination": OURS_UP, "source": {"node": "98", "output": "0"}, "x": 0, "y": 8, "resize_source": False,
         "mask": OURS_UP}, "latent.composite_masked"),
    "LatentBatch": Case({"samples1": UP, "samples2": ["98", 0]}, [],
                        {"samples1": OURS_UP, "samples2": {"node": "98", "output": "0"}}, "latent.batch"),
    "LatentFromBatch": Case({"samples": UP, "batch_index": 2, "length": 1}, [2, 1],
                            {"samples": OURS_UP, "batch_index": 2, "length": 1}, "latent.from_batch"),
    "RepeatLatentBatch": Case({"samples": UP, "amount": 4}, [4], {"samples": OURS_UP, "amount": 4},
                              "latent.repeat_batch"),
    "LatentCrop": Case({"samples": UP, "width": 256, "height": 128, "x": 8, "y": 0}, [256, 128, 8, 0],
                       {"samples": OURS_UP, "width": 256, "height": 128, "x": 8, "y": 0}, "latent.crop"),
    "LatentFlip": Case({"samples": UP, "flip_method": "x-axis: vertically"}, ["x-axis: vertically"],
                       {"samples": OURS_UP, "flip_method": "x-axis: vertically"}, "latent.flip"),
    "LatentRotate": Case({"samples": UP, "rotation": "270 degrees"}, ["270 degrees"],
                         {"samples": OURS_UP, "rotation": "270 degrees"}, "latent.rotate"),
    "LatentUpscaleBy": Case({"samples": UP, "upscale_method": "bislerp", "scale_by": 2.0}, ["bislerp", 2.0],
                            {"samples": OURS_UP, "upscale_method": "bislerp", "scale_by": 2.0}, "latent.upscale_by"),
    "LatentAdd": Case({"samples1": UP, "samples2": ["98", 0]}, [],
                      {"samples1": OURS_UP, "samples2": {"node": "98", "output": "0"}}, "latent.add"),
    "LatentSubtract": Case({"samples1": UP, "samples2": ["98", 0]}, [],
                           {"samples1": OURS_UP, "samples2": {"node": "98", "output": "0"}}, "latent.subtract"),
    "LatentMultiply": Case({"samples": UP, "multiplier": -0.5}, [-0.5], {"samples": OURS_UP, "multiplier": -0.5},
                           "latent.multiply"),
    "CLIPVisionLoader": Case({"clip_name": "v.safetensors"}, ["v.safetensors"], {"clip_name": "v.safetensors"},
                             "clip_vision.loader"),
    "CLIPVisionEncode": Case({"clip_vision": UP, "image": UP, "crop": "none"}, ["none"],
                             {"clip_vision": OURS_UP, "image": OURS_UP, "crop": "none"}, "clip_vision.encode"),
    "IPAdapterModelLoader": Case({"ipadapter_file": "ip.safetensors"}, ["ip.safetensors"],
                                 {"ipadapter_file": "ip.safetensors"}, "ipadapter.loader"),
    "IPAdapterAdvanced": Case(
        {"model": UP, "ipadapter": UP, "image": UP, "clip_vision": UP, "weight": 0.7, "weight_type": "linear",
         "combine_embeds": "average", "start_at": 0.1, "end_at": 0.9, "embeds_scaling": "V only"},
        [0.7, "linear", "average", 0.1, 0.9, "V only"],
        {"model": OURS_UP, "ipadapter": OURS_UP, "image": OURS_UP, "clip_vision": OURS_UP, "weight": 0.7,
         "combine_embeds": "average", "start_at": 0.1, "end_at": 0.9},
        "ipadapter.apply"),
    "ControlNetLoader": Case({"control_net_name": "c.safetensors"}, ["c.safetensors"],
                             {"control_net_name": "c.safetensors"}, "loaders.controlnet"),
    "ControlNetApplyAdvanced": Case(
        {"positive": UP, "negative": UP, "control_net": UP, "image": UP, "strength": 0.8, "start_percent": 0.1,
         "end_percent": 0.9},
        [0.8, 0.1, 0.9],
        {"positive": OURS_UP, "negative": OURS_UP, "control_net": OURS_UP, "image": OURS_UP, "strength": 0.8,
         "start_percent": 0.1, "end_percent": 0.9},
        "conditioning.controlnet_apply_advanced"),
    "ControlNetApply": Case({"conditioning": UP, "control_net": UP, "image": UP, "strength": 1.2}, [1.2],
                            {"conditioning": OURS_UP, "control_net": OURS_UP, "image": OURS_UP, "strength": 1.2},
                            "conditioning.controlnet_apply"),
    "SetUnionControlNetType": Case({"control_net": UP, "type": "canny/lineart/anime_lineart/mlsd"},
                                   ["canny/lineart/anime_lineart/mlsd"],
                                   {"control_net": OURS_UP, "type": "canny/lineart/anime_lineart/mlsd"},
                                   "conditioning.controlnet_union_type"),
    "UpscaleModelLoader": Case({"model_name": "4x.safetensors"}, ["4x.safetensors"],
                               {"model_name": "4x.safetensors"}, "loaders.upscale_model"),
    "ImageUpscaleWithModel": Case({"upscale_model": UP, "image": UP}, [],
                                  {"upscale_model": OURS_UP, "image": OURS_UP, "tile_size": 512, "overlap": 32},
                                  "image.upscale_with_model"),
    "VAEDecodeTiled": Case({"samples": UP, "vae": UP, "tile_size": 256, "overlap": 32, "temporal_size": 64,
                            "temporal_overlap": 8}, [256, 32, 64, 8],
                           {"latent": OURS_UP, "vae": OURS_UP, "tile_size": 256, "overlap": 32, "temporal_size": 64,
                            "temporal_overlap": 8}, "image.vae_decode_tiled"),
    "VAEEncodeTiled": Case({"pixels": UP, "vae": UP, "tile_size": 384, "overlap": 64, "temporal_size": 32,
                            "temporal_overlap": 4}, [384, 64, 32, 4],
                           {"image": OURS_UP, "vae": OURS_UP, "tile_size": 384, "overlap": 64, "temporal_size": 32,
                            "temporal_overlap": 4}, "image.vae_encode_tiled"),
}  # fmt: skip


def test_every_class_has_a_mapping_case() -> None:
    assert sorted(CASES) == sorted(m.comfy_class for m in CLASSES)


@pytest.mark.parametrize("entry", CLASSES, ids=lambda m: m.comfy_class)
def test_entry_names_a_real_node_and_real_inputs(entry: ClassMapping) -> None:
    spec = default_registry().get(entry.node)
    assert spec is not None, f"{entry.comfy_class} maps to {entry.node}, which is not registered"
    assert entry.comfy_class in spec.aliases
    assert BY_CLASS[entry.comfy_class] is entry
    our_inputs = {i.name for i in spec.inputs}
    assert set(entry.rename.values()) <= our_inputs
    assert not set(entry.rename) & set(entry.neutral), "a neutral input has no counterpart"
    assert set(entry.fixed) <= our_inputs
    order = entry.widget_order(spec)
    for name in order:
        if name in entry.neutral:
            continue
        found = spec.input(entry.ours(name))
        assert found is not None and found.is_widget, f"widget {name!r} is not one of ours"
    assert set(entry.seeds) <= set(order) and set(entry.uploads) <= set(order)
    for seed in entry.seeds:
        assert spec.input(entry.ours(seed)).type == "INT"  # type: ignore[union-attr]
    outputs = [o for o in entry.output_names(spec) if o is not None]
    assert all(spec.output(name) is not None for name in outputs)


def upstream_api() -> dict[str, Any]:
    return {
        "99": {"class_type": "Upstream", "inputs": {}},
        "98": {"class_type": "Upstream", "inputs": {}},
    }


@pytest.mark.parametrize("comfy_class", sorted(CASES))
def test_class_imports_from_an_api_prompt(comfy_class: str) -> None:
    case = CASES[comfy_class]
    prompt = {**upstream_api(), "1": {"class_type": comfy_class, "inputs": case.api}}
    result = import_api_prompt(prompt)
    node = result.workflow["nodes"]["1"]
    assert node["type"] == case.node_type
    assert node["inputs"] == case.ours
    assert [m.type for m in result.report.mapped] == [case.node_type]


def editor_graph(comfy_class: str, case: Case) -> dict[str, Any]:
    links: list[list[Any]] = []
    inputs: list[dict[str, Any]] = []
    for name, value in case.api.items():
        if isinstance(value, list):
            link_id = len(links) + 1
            links.append([link_id, int(value[0]), 0, 1, len(inputs), "*"])
            inputs.append({"name": name, "type": "*", "link": link_id})
    upstream = [
        {"id": n, "type": "Upstream", "pos": [0, 0], "mode": 0,
         "outputs": [{"name": "X", "type": "*", "links": [lk[0] for lk in links if lk[1] == n]}]}
        for n in (98, 99)
    ]  # fmt: skip
    node = {
        "id": 1, "type": comfy_class, "pos": [300, 0], "size": [200, 100], "mode": 0,
        "inputs": inputs, "outputs": [], "widgets_values": case.widgets,
    }  # fmt: skip
    return {"nodes": [*upstream, node], "links": links, "version": 0.4}


@pytest.mark.parametrize("comfy_class", sorted(CASES))
def test_class_imports_from_an_editor_file(comfy_class: str) -> None:
    case = CASES[comfy_class]
    result = import_editor_workflow(editor_graph(comfy_class, case))
    node = result.workflow["nodes"]["1"]
    assert node["type"] == case.node_type
    assert dict(sorted(node["inputs"].items())) == dict(sorted(case.ours.items()))
    entry = BY_CLASS[comfy_class]
    if entry.seeds:
        assert node["ui"]["seed_control"] == {entry.ours(entry.seeds[0]): "fixed"}
