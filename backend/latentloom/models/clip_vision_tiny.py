"""A tiny random-weight CLIP vision tower in the real file layout, for tests and the demo.

It is transformers' `CLIPVisionModelWithProjection` in miniature (32 wide, three layers, one
head, GELU) at the real 224-pixel input with 14-pixel patches, so the loader reads it with the
same shape rules as a ViT-H file and CLIP Vision Encode does the real preprocessing. Weights
are the library's seeded initialisation rounded to fp16, as stored; the same seed gives the
same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from latentloom.models.safetensors_write import save_tensors

if TYPE_CHECKING:
    from transformers import CLIPVisionConfig

TINY_VISION_WIDTH = 32
TINY_VISION_PROJECTION = 16
TINY_VISION_LAYERS = 3
STORAGE = torch.float16


def tiny_vision_config() -> CLIPVisionConfig:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=TINY_VISION_WIDTH,
        intermediate_size=4 * TINY_VISION_WIDTH,
        projection_dim=TINY_VISION_PROJECTION,
        num_hidden_layers=TINY_VISION_LAYERS,
        num_attention_heads=1,  # the loader's rule for an unknown width: 64-wide heads, >= 1
        image_size=224,
        patch_size=14,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
    )


def tiny_vision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The tower's weights by their file names, rounded to the storage dtype."""
    from transformers import CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    model = CLIPVisionModelWithProjection(tiny_vision_config())
    state = cast(dict[str, torch.Tensor], model.state_dict())
    return {key: value.detach().to(STORAGE).contiguous() for key, value in state.items()}


def make_tiny_clip_vision(path: Path, seed: int = 0) -> Path:
    """Write the tiny tower to `path` (a `clip_vision/` safetensors file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, tiny_vision_state(seed))
    return path
