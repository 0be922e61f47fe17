"""CLIP vision towers from `clip_vision/` files, and CLIP Vision Encode.

The files users have are transformers' `CLIPVisionModelWithProjection` saved as safetensors:
OpenAI's ViT-L/14 and the OpenCLIP ViT-H/14 and ViT-bigG/14 that IP-Adapter was trained
with (h94's `image_encoder/model.safetensors`, ComfyUI's `CLIP-ViT-H-14-laion2B-s32B-b79K`),
all `vision_model.*` plus `visual_projection.weight`. A whole CLIPModel file also loads (its
text tower is skipped). The architecture is read from the shapes: width from the patch
embedding, patch and image size from it and the position table, depth from the layer count,
MLP width and projection from their weights. What shapes cannot show follows the known
towers: 16 heads for ViT-L (1024 wide), ViT-H (1280) and ViT-bigG (1664), 12 for ViT-B
(768), 64-wide heads otherwise; OpenAI's towers (768, 1024) use quick-GELU, OpenCLIP's GELU.

Encoding follows ComfyUI's CLIP Vision Encode, so embeddings match its for the same file:
crop "center" scales the short side to the tower's size (bicubic, antialiased) and cuts the
middle, "none" squashes the whole image to a square; pixels are rounded to 8 bits and
normalised with CLIP's mean and deviation. The output keeps the projected image embedding,
the last hidden state and the penultimate layer's (IP-Adapter plus models read that one).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.safetensors_file import SafetensorsFile

if TYPE_CHECKING:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CROPS = ("center", "none")
Crop = Literal["center", "none"]

ROOT = "vision_model."
PROJECTION = "visual_projection.weight"
PATCH_EMBEDDING = ROOT + "embeddings.patch_embedding.weight"
POSITION_EMBEDDING = ROOT + "embeddings.position_embedding.weight"
# width -> (name, heads, activation) of the towers people use.
KNOWN_TOWERS: dict[int, tuple[str, int, str]] = {
    768: ("ViT-B", 12, "quick_gelu"),
    1024: ("ViT-L/14", 16, "quick_gelu"),
    1280: ("ViT-H/14", 16, "gelu"),
    1664: ("ViT-bigG/14", 16, "gelu"),
}
_LAYER = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.")


@dataclass(frozen=True)
class ClipVision:
    """CLIP_VISION: a vision tower with its projection."""

    model: CLIPVisionModelWithProjection
    name: str  # "ViT-H/14", ... or "custom (width N)"
    image_size: int
    source: str


@dataclass(frozen=True)
class ClipVisionOutput:
    """CLIP_VISION_OUTPUT: one image batch's encodings, float32 on the CPU."""

    image_embeds: Tensor  # [B, projection_dim]
    last_hidden_state: Tensor  # [B, tokens, width]
    penultimate_hidden_states: Tensor  # [B, tokens, width]


def vision_config(shapes: dict[str, tuple[int, ...]], path: Path) -> CLIPVisionConfig:
    """The tower's configuration, read from the tensor shapes (see the module docstring)."""
    from transformers import CLIPVisionConfig

    missing = [
        key for key in (PATCH_EMBEDDING, POSITION_EMBEDDING, PROJECTION) if key not in shapes
    ]
    if missing:
        raise UnrecognizedCheckpointError(
            path,
            f"not a CLIP vision model with projection: no {', '.join(missing)}",
            "Use a transformers CLIPVisionModelWithProjection file, e.g. "
            "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors",
        )
    width, _, patch, _ = shapes[PATCH_EMBEDDING]
    grid = math.isqrt(shapes[POSITION_EMBEDDING][0] - 1)
    layers = 1 + max(int(m.group(1)) for key in shapes if (m := _LAYER.match(key)))
    _, heads, activation = KNOWN_TOWERS.get(width, ("", max(1, width // 64), "gelu"))
    return CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=shapes[ROOT + "encoder.layers.0.mlp.fc1.weight"][0],
        projection_dim=shapes[PROJECTION][0],
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=grid * patch,
        patch_size=patch,
        hidden_act=activation,
        layer_norm_eps=1e-5,
    )


def load_clip_vision(
    path: Path, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> ClipVision:
    """A `clip_vision/` safetensors file as a CLIP_VISION handle (see the module docstring)."""
    from transformers import CLIPVisionModelWithProjection

    with SafetensorsFile(path) as file:
        shapes = dict(file.shapes())
        config = vision_config(shapes, path)
        with torch.device("meta"):
            model = CLIPVisionModelWithProjection(config)
        expected = cast(dict[str, Tensor], model.state_dict())
        extra = [k for k in shapes if k.startswith((ROOT, PROJECTION)) and k not in expected]
        missing = [k for k in expected if k not in shapes]
        wrong = [k for k in expected if k in shapes and shapes[k] != tuple(expected[k].shape)]
        if missing or extra or wrong:
            raise WeightMismatchError(
                path,
                f"the CLIP vision weights do not fit a {config.hidden_size}-wide tower: "
                f"missing {missing[:5]}, unexpected {extra[:5]}, wrong shape {wrong[:5]}",
            )
        state = {key: file.read(key, dtype=dtype or torch.float32) for key in expected}
    model.load_state_dict(state, assign=True)
    _fill_buffers(cast(torch.nn.Module, model))
    module = cast(torch.nn.Module, model).to(device or "cpu").eval().requires_grad_(False)
    name = KNOWN_TOWERS.get(config.hidden_size, (f"custom (width {config.hidden_size})",))[0]
    return ClipVision(cast(Any, module), name, int(cast(int, config.image_size)), str(path))


def _fill_buffers(model: torch.nn.Module) -> None:
    """Non-persistent buffers (position ids) are not in the file: make them for real."""
    embeddings = cast(Any, model).vision_model.embeddings
    if embeddings.position_ids.is_meta:
        count = embeddings.position_embedding.weight.shape[0]
        embeddings.register_buffer(
            "position_ids", torch.arange(count).expand((1, -1)), persistent=False
        )
    leftover = [name for name, buffer in model.named_buffers() if buffer.is_meta]
    if leftover:
        raise RuntimeError(f"CLIP vision buffers left unset: {leftover}")


def preprocess(images: Tensor, size: int, crop: Crop) -> Tensor:
    """IMAGE [B, H, W, C] in 0..1 -> the tower's normalised input [B, 3, size, size]."""
    if crop not in CROPS:
        raise ValueError(f"crop {crop!r} is not one of: {', '.join(CROPS)}")
    pixels = images[..., :3].movedim(-1, 1).to(torch.float32)
    height, width = pixels.shape[-2:]
    if (height, width) != (size, size):
        if crop == "center":
            scale = size / min(height, width)
            target = (round(scale * height), round(scale * width))
        else:
            target = (size, size)
        pixels = F.interpolate(pixels, size=target, mode="bicubic", antialias=True)
        top, left = (pixels.shape[-2] - size) // 2, (pixels.shape[-1] - size) // 2
        pixels = pixels[:, :, top : top + size, left : left + size]
    pixels = (pixels * 255.0).clamp(0, 255).round() / 255.0  # as an 8-bit image would be
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


@torch.inference_mode()
def encode_image(
    clip_vision: ClipVision, images: Tensor, crop: Crop = "center"
) -> ClipVisionOutput:
    """CLIP Vision Encode: IMAGE [B, H, W, C] in 0..1 -> embeddings (see the module docstring)."""
    model = cast(torch.nn.Module, clip_vision.model)
    parameter = next(model.parameters())
    pixels = preprocess(images, clip_vision.image_size, crop)
    out = cast(Any, model)(
        pixel_values=pixels.to(parameter.device, parameter.dtype), output_hidden_states=True
    )

    def cpu(tensor: Tensor) -> Tensor:
        return tensor.to("cpu", torch.float32).clone()

    return ClipVisionOutput(
        image_embeds=cpu(out.image_embeds),
        last_hidden_state=cpu(out.last_hidden_state),
        penultimate_hidden_states=cpu(out.hidden_states[-2]),
    )
