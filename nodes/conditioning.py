"""Text conditioning."""

from __future__ import annotations

from typing import Literal, cast

from latentloom.api import (
    NodeContext,
    NodeSpec,
    Output,
    SocketType,
    TextEncoders,
    encode_prompt,
    enum_input,
    socket,
    string_input,
)

Weighting = Literal["a1111", "comfy"]
WEIGHTINGS = ("a1111", "comfy")


def encode_prompt_node(
    ctx: NodeContext, clip: TextEncoders, text: str, weighting: str
) -> dict[str, object]:
    return {"conditioning": encode_prompt(clip, text, cast(Weighting, weighting))}


NODES = [
    NodeSpec(
        id="conditioning.encode_prompt",
        display_name="Encode Prompt",
        aliases=("CLIPTextEncode", "CLIP Text Encode (Prompt)"),
        category="conditioning",
        description="Encodes a prompt with the checkpoint's text encoder(s), prompts longer than "
        "77 tokens included. Weighting 'a1111': (word:1.2) and (word) emphasis, [word] "
        "de-emphasis, BREAK, weights scaled then the mean restored. Weighting 'comfy' (what "
        "ComfyUI's CLIPTextEncode does, set on imported graphs): (word:1.2) sets the weight, "
        "[ ] and BREAK are plain text, and a weighted token moves away from the empty prompt's "
        "encoding by its weight.",
        inputs=(
            socket("clip", SocketType.CLIP),
            string_input("text", "", multiline=True),
            enum_input(
                "weighting",
                WEIGHTINGS,
                "a1111",
                tooltip="How (word:1.2) emphasis is read and applied: AUTOMATIC1111's way or "
                "ComfyUI's.",
            ),
        ),
        outputs=(Output("conditioning", SocketType.CONDITIONING),),
        function=encode_prompt_node,
    ),
]
