"""SDXL's prompt nodes with size and aesthetic-score conditioning (ComfyUI's CLIPTextEncodeSDXL
and CLIPTextEncodeSDXLRefiner).

SDXL's UNets read a few numbers beside the pooled text embedding: the base the original size,
the crop's top-left corner and the target size; the refiner the original size, the crop and an
aesthetic score. Plain Encode Prompt leaves them to the sampler (the latent's size, no crop;
aesthetic score 6.0 positive, 2.5 negative); these nodes set them on the entry they return
(`ConditioningEntry.size`, in pixels as (height, width)), so one graph can ask for "a 4096
pixel photo, cropped" or a refiner pass at a chosen score.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, cast

from latentloom.api import (
    MAX_SIDE,
    Conditioning,
    Input,
    NodeContext,
    NodeSpec,
    Output,
    SizeConditioning,
    SocketType,
    TextEncoders,
    encode_prompt,
    encode_prompt_pair,
    enum_input,
    float_input,
    int_input,
    prompt_embeddings,
    socket,
    string_input,
)

Weighting = Literal["a1111", "comfy"]
WEIGHTINGS = ("a1111", "comfy")
MAX_AESTHETIC_SCORE = 1000.0  # ComfyUI's bound; the refiner was trained on scores 0..10


def with_size(conditioning: Conditioning, size: SizeConditioning) -> Conditioning:
    """Every entry with its size conditioning set (what the node encoded is one entry)."""
    return Conditioning(tuple(replace(entry, size=size) for entry in conditioning.entries))


def encode_sdxl(
    ctx: NodeContext,
    clip: TextEncoders,
    width: int,
    height: int,
    crop_w: int,
    crop_h: int,
    target_width: int,
    target_height: int,
    text_g: str,
    text_l: str,
    weighting: str,
) -> dict[str, object]:
    chosen = cast(Weighting, weighting)
    encoded = encode_prompt_pair(clip, text_g, text_l, chosen, embeddings=ctx.folders)
    size = SizeConditioning(
        original=(height, width),
        crop_top_left=(crop_h, crop_w),
        target=(target_height, target_width),
    )
    return {"conditioning": with_size(encoded, size)}


def encode_sdxl_refiner(
    ctx: NodeContext,
    clip: TextEncoders,
    ascore: float,
    width: int,
    height: int,
    text: str,
    weighting: str,
) -> dict[str, object]:
    chosen = cast(Weighting, weighting)
    encoded: Conditioning = encode_prompt(clip, text, chosen, embeddings=ctx.folders)
    size = SizeConditioning(original=(height, width), aesthetic_score=ascore)
    return {"conditioning": with_size(encoded, size)}


def _side(name: str, default: int, what: str) -> Input:
    return int_input(name, default, min=0, max=MAX_SIDE, tooltip=what)


def _weighting() -> Input:
    return enum_input(
        "weighting",
        WEIGHTINGS,
        "a1111",
        tooltip="How (word:1.2) emphasis is read and applied: AUTOMATIC1111's way or ComfyUI's.",
    )


def _prompt(name: str, tooltip: str) -> Input:
    return string_input(name, "", multiline=True, references=prompt_embeddings, tooltip=tooltip)


_CONDITIONING = Output("conditioning", SocketType.CONDITIONING)

NODES = [
    NodeSpec(
        id="conditioning.encode_prompt_sdxl",
        display_name="Encode Prompt (SDXL)",
        aliases=("CLIPTextEncodeSDXL",),
        category="advanced/conditioning",
        description="Two prompts for the SDXL base's two text encoders (text_g for OpenCLIP "
        "bigG, text_l for CLIP-L; the shorter is padded with the empty prompt) and the size "
        "conditioning the base UNet reads: the original image size, the crop's top-left "
        "corner and the target size, in pixels.",
        inputs=(
            socket("clip", SocketType.CLIP),
            _side("width", 1024, "Original width the UNet is told the image had."),
            _side("height", 1024, "Original height the UNet is told the image had."),
            _side("crop_w", 0, "Left edge of the crop, in original pixels."),
            _side("crop_h", 0, "Top edge of the crop, in original pixels."),
            _side("target_width", 1024, "Width the UNet is told the picture is made for."),
            _side("target_height", 1024, "Height the UNet is told the picture is made for."),
            _prompt("text_g", "The prompt for OpenCLIP bigG (which also gives the pooled one)."),
            _prompt("text_l", "The prompt for CLIP-L."),
            _weighting(),
        ),
        outputs=(_CONDITIONING,),
        function=encode_sdxl,
    ),
    NodeSpec(
        id="conditioning.encode_prompt_sdxl_refiner",
        display_name="Encode Prompt (SDXL Refiner)",
        aliases=("CLIPTextEncodeSDXLRefiner",),
        category="advanced/conditioning",
        description="A prompt with the conditioning the SDXL refiner's UNet reads beside it: an "
        "aesthetic score (the refiner was trained on 0-10 ratings; 6 is ComfyUI's and "
        "diffusers' default for the positive prompt, 2.5 for the negative) and the original "
        "image size in pixels. On the base's CLIP the score is ignored by the base UNet.",
        inputs=(
            float_input(
                "ascore",
                6.0,
                min=0.0,
                max=MAX_AESTHETIC_SCORE,
                step=0.01,
                tooltip="Aesthetic score the refiner aims for: higher for the positive prompt, "
                "lower for the negative.",
            ),
            _side("width", 1024, "Original width the UNet is told the image had."),
            _side("height", 1024, "Original height the UNet is told the image had."),
            _prompt("text", "The prompt."),
            socket("clip", SocketType.CLIP),
            _weighting(),
        ),
        outputs=(_CONDITIONING,),
        function=encode_sdxl_refiner,
    ),
]
