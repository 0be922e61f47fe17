"""Prompt nodes for SD 3.x and FLUX.1 (ComfyUI's CLIPTextEncodeSD3 and CLIPTextEncodeFlux).

Both families read a prompt through several encoders at once: SD 3 through CLIP-L, CLIP-G and
T5-XXL, FLUX through CLIP-L (its pooled vector only) and T5-XXL (the context). Plain Encode
Prompt gives every encoder the same text; these nodes give each its own, as ComfyUI's do,
and the FLUX node also sets the distilled guidance FLUX dev reads (`ConditioningEntry.guidance`;
schnell has no guidance embedder and ignores it). The encoding itself is the library's
(`encode_sd3`, `encode_flux`: the layout diffusers' pipelines and ComfyUI use).

SD 3's `empty_padding` is ComfyUI's: "none" leaves an encoder whose text is empty out of the
conditioning (a tower left out alone reads the empty prompt instead, so CLIP-L and CLIP-G stay
side by side; all three left out give zeros), "empty_prompt" encodes the empty text like any
other. Only the empty string counts as empty, as in ComfyUI.

A CLIP of another family is refused: the SDXL towers would encode silently into the wrong
layout.
"""

from __future__ import annotations

from typing import Literal, cast

from latentloom.api import (
    Input,
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    TextEncoders,
    encode_flux,
    encode_sd3,
    enum_input,
    float_input,
    prompt_embeddings,
    socket,
    string_input,
)

Weighting = Literal["a1111", "comfy"]
WEIGHTINGS = ("a1111", "comfy")
EMPTY_PADDINGS = ("none", "empty_prompt")
FLUX_DEFAULT_GUIDANCE = 3.5  # ComfyUI's default and diffusers' FluxPipeline guidance_scale
MAX_GUIDANCE = 100.0


class WrongClipFamilyError(ValueError):
    """A family prompt node got a CLIP handle of another family."""

    def __init__(self, node: str, wanted: str, clip: TextEncoders, how: str) -> None:
        self.node, self.wanted, self.found = node, wanted, clip.family.name
        super().__init__(
            f"{node} takes {wanted} CLIP ({how}); the CLIP from {clip.source} is "
            f"{clip.family.display_name}. Use Encode Prompt for it"
        )


def _require(clip: TextEncoders, family: str, node: str, wanted: str, how: str) -> None:
    if clip.family.name != family:
        raise WrongClipFamilyError(node, wanted, clip, how)


def _text(text: str, empty_padding: str) -> str | None:
    """None leaves the encoder out (empty_padding "none" and no text)."""
    if empty_padding not in EMPTY_PADDINGS:
        raise ValueError(
            f"empty_padding {empty_padding!r} is not one of: {', '.join(EMPTY_PADDINGS)}"
        )
    return None if text == "" and empty_padding == "none" else text


def encode_sd3_node(
    ctx: NodeContext,
    clip: TextEncoders,
    clip_l: str,
    clip_g: str,
    t5xxl: str,
    empty_padding: str,
    weighting: str,
) -> dict[str, object]:
    _require(
        clip,
        "sd3",
        "Encode Prompt (SD3)",
        "an SD 3",
        "from an SD 3.x checkpoint, Triple CLIP Loader, or Dual CLIP Loader / Load CLIP with "
        "type sd3",
    )
    encoded = encode_sd3(
        clip,
        clip_l=_text(clip_l, empty_padding),
        clip_g=_text(clip_g, empty_padding),
        t5xxl=_text(t5xxl, empty_padding),
        weighting=cast(Weighting, weighting),
        embeddings=ctx.folders,
    )
    return {"conditioning": encoded}


def encode_flux_node(
    ctx: NodeContext,
    clip: TextEncoders,
    clip_l: str,
    t5xxl: str,
    guidance: float,
    weighting: str,
) -> dict[str, object]:
    _require(
        clip,
        "flux",
        "Encode Prompt (FLUX)",
        "a FLUX",
        "CLIP-L and T5-XXL from Dual CLIP Loader with type flux",
    )
    encoded = encode_flux(
        clip,
        clip_l=clip_l,
        t5xxl=t5xxl,
        guidance=guidance,
        weighting=cast(Weighting, weighting),
        embeddings=ctx.folders,
    )
    return {"conditioning": encoded}


def _prompt(name: str, tooltip: str) -> Input:
    return string_input(name, "", multiline=True, references=prompt_embeddings, tooltip=tooltip)


_WEIGHTING = enum_input(
    "weighting",
    WEIGHTINGS,
    "a1111",
    tooltip="How (word:1.2) emphasis is read and applied: AUTOMATIC1111's way or ComfyUI's.",
)
_CONDITIONING = Output("conditioning", SocketType.CONDITIONING)

NODES = [
    NodeSpec(
        id="conditioning.encode_prompt_sd3",
        display_name="Encode Prompt (SD3)",
        aliases=("CLIPTextEncodeSD3", "CLIP Text Encode SD3"),
        category="advanced/conditioning",
        description="Three prompts for SD 3.x's three text encoders: clip_l (CLIP-L) and "
        "clip_g (CLIP-G) side by side, padded to T5's width, then t5xxl (T5-XXL) after them; "
        "the pooled vector is CLIP-L's and CLIP-G's. Encoders the CLIP lacks contribute zeros, "
        "as in ComfyUI and diffusers. empty_padding 'none' leaves an encoder with an empty "
        "prompt out (ComfyUI's default); 'empty_prompt' encodes the empty text.",
        inputs=(
            socket("clip", SocketType.CLIP),
            _prompt("clip_l", "The prompt for CLIP-L."),
            _prompt("clip_g", "The prompt for CLIP-G (OpenCLIP bigG)."),
            _prompt("t5xxl", "The prompt for T5-XXL: long, natural sentences."),
            enum_input(
                "empty_padding",
                EMPTY_PADDINGS,
                "none",
                tooltip="none: an empty prompt leaves its encoder out; empty_prompt: the "
                "encoder reads the empty text.",
            ),
            _WEIGHTING,
        ),
        outputs=(_CONDITIONING,),
        function=encode_sd3_node,
    ),
    NodeSpec(
        id="conditioning.encode_prompt_flux",
        display_name="Encode Prompt (FLUX)",
        aliases=("CLIPTextEncodeFlux", "CLIP Text Encode Flux"),
        category="advanced/conditioning/flux",
        description="Two prompts for FLUX.1: t5xxl gives the context the transformer attends "
        "to, clip_l only CLIP-L's pooled vector. guidance is FLUX dev's distilled guidance "
        "(it replaces classifier-free guidance: sample with cfg 1); schnell ignores it.",
        inputs=(
            socket("clip", SocketType.CLIP),
            _prompt("clip_l", "The prompt for CLIP-L (its pooled vector)."),
            _prompt("t5xxl", "The prompt for T5-XXL: what the image shows."),
            float_input(
                "guidance",
                FLUX_DEFAULT_GUIDANCE,
                min=0.0,
                max=MAX_GUIDANCE,
                step=0.1,
                tooltip="FLUX dev's guidance embedding (3.5 typical); schnell has none.",
            ),
            _WEIGHTING,
        ),
        outputs=(_CONDITIONING,),
        function=encode_flux_node,
    ),
]
