"""Clip skip: read every text encoder of a CLIP at an earlier layer (CLIP Set Last Layer).

The layer is counted from the end as ComfyUI's CLIPSetLastLayer counts it: -1 is the last
layer, -2 the one before it, and so on. Like ComfyUI, the index is set directly on every tower,
replacing the family's default: SD 2.x (whose default is the penultimate layer) at -1 reads the
last layer, and SDXL's towers (penultimate by default) at -1 read their last hidden state
without the final layer norm. How the chosen state is normalised is the family's rule
(`encode.normalises_intermediate`). A layer past a tower's depth is an error naming the input
and the range, where ComfyUI silently falls back to the last layer.
"""

from __future__ import annotations

import dataclasses

from latentloom.models.handles import TextEncoders

INPUT = "stop_at_clip_layer"


class ClipSkipError(ValueError):
    def __init__(self, layer: int, depth: int, family: str) -> None:
        super().__init__(
            f"{INPUT} {layer} is outside this {family} text encoder's range: it has {depth} "
            f"layers, so use -1 to -{depth}"
        )
        self.layer, self.depth = layer, depth


def depth(clip: TextEncoders) -> int:
    """Layers of the shallowest tower: the deepest skip every tower can take."""
    return min(int(encoder.model.config.num_hidden_layers) for encoder in clip.encoders)


def set_last_layer(clip: TextEncoders, layer: int) -> TextEncoders:
    """A new CLIP handle whose encoders stop at `layer` (-1 ... -depth); the input is unchanged."""
    layers = depth(clip)
    if not -layers <= layer <= -1:
        raise ClipSkipError(layer, layers, clip.family.display_name)
    encoders = tuple(dataclasses.replace(encoder, stop_at_layer=layer) for encoder in clip.encoders)
    return dataclasses.replace(clip, encoders=encoders)
