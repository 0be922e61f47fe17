"""Images in and out: IMAGE tensors <-> Pillow, PNGs that carry their workflow, animations.

IMAGE values are float32 tensors [B, H, W, 3] in 0..1 on the CPU, the layout users of other
node editors expect. A saved PNG holds the workflow that made it as JSON in a `workflow`
text chunk, so dropping the image back on the canvas restores the graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, PngImagePlugin

WORKFLOW_CHUNK = "workflow"


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    pixels = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return [Image.fromarray(frame, mode="RGB") for frame in pixels]


def from_pil(image: Image.Image) -> torch.Tensor:
    """One RGB image as a [1, H, W, 3] float tensor."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).unsqueeze(0)


def save_png(image: Image.Image, path: Path, workflow: dict[str, Any] | None) -> None:
    info = PngImagePlugin.PngInfo()
    if workflow is not None:
        info.add_text(WORKFLOW_CHUNK, json.dumps(workflow, separators=(",", ":")))
    # No timestamps or other varying metadata: same pixels + workflow -> same bytes.
    image.save(path, format="PNG", pnginfo=info, compress_level=4)


def read_png_workflow(path: Path) -> dict[str, Any] | None:
    with Image.open(path) as image:
        text = image.info.get(WORKFLOW_CHUNK) if isinstance(image.info, dict) else None
    return json.loads(text) if isinstance(text, str) else None


def save_animation(
    frames: list[Image.Image], path: Path, *, fps: float, format: Literal["webp", "gif"], loop: bool
) -> None:
    duration_ms = max(1, round(1000 / fps))
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": duration_ms,
    }
    options["loop"] = 0 if loop else 1
    if format == "webp":
        options.update(lossless=False, quality=90, method=4)
    frames[0].save(path, format=format.upper(), **options)


def next_free_path(folder: Path, prefix: str, suffix: str) -> Path:
    """`prefix_00001.suffix`, the first counter not taken yet, confined to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    safe_prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in prefix)[:64] or "image"
    taken = {p.name for p in folder.glob(f"{safe_prefix}_*{suffix}")}
    counter = 1
    while f"{safe_prefix}_{counter:05d}{suffix}" in taken:
        counter += 1
    return folder / f"{safe_prefix}_{counter:05d}{suffix}"
