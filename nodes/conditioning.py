"""Text conditioning."""

from __future__ import annotations

from latentloom.engine.context import NodeContext
from latentloom.models.handles import TextEncoders
from latentloom.node import NodeSpec, Output, SocketType, socket, string_input


def encode_prompt(ctx: NodeContext, clip: TextEncoders, text: str) -> dict[str, object]:
    from latentloom.text.encode import encode_prompt as encode

    return {"conditioning": encode(clip, text)}


NODES = [
    NodeSpec(
        id="conditioning.encode_prompt",
        display_name="Encode Prompt",
        aliases=("CLIPTextEncode", "CLIP Text Encode (Prompt)"),
        category="conditioning",
        description="Encodes a prompt with the checkpoint's text encoder(s). Supports (word:1.2) "
        "emphasis, [word] de-emphasis, BREAK, and prompts longer than 77 tokens.",
        inputs=(socket("clip", SocketType.CLIP), string_input("text", "", multiline=True)),
        outputs=(Output("conditioning", SocketType.CONDITIONING),),
        function=encode_prompt,
    ),
]
