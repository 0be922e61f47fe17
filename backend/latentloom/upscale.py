"""Upscale images with a model (ESRGAN and friends), tile by tile so large images fit.

An upscaler's activations live at the output resolution: a 4x ESRGAN needs about 900 bytes
per output pixel in fp32, 15 GiB for a 4x of 1024². Tiles of `tile` input pixels with
`overlap` pixels shared between neighbours bound that to one tile's worth; the overlaps are
blended with linear ramps (`tiling.py`). Away from the overlaps a tiled result equals the
untiled one wherever the model's receptive field stays inside the tile (a tiny ESRGAN reaches
19 input pixels); within them it is a weighted mean of two close answers.

Images travel as IMAGE ([B, H, W, 3] float32 in 0..1 on the CPU); each is moved to the
model's device and dtype a tile at a time, and its output blended on the CPU in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from latentloom.models.upscale_model import UpscaleModel
from latentloom.tiling import tile_grid, tiled_map

DEFAULT_TILE = 512  # ComfyUI's ImageUpscaleWithModel tile and overlap
DEFAULT_OVERLAP = 32
MIN_TILE = 32


class UpscaleInputError(ValueError):
    """The image does not fit the model (channels) or the tile settings make no grid."""


@torch.inference_mode()
def upscale_images(
    model: UpscaleModel,
    images: torch.Tensor,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    check_cancelled: Callable[[], None] = lambda: None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> torch.Tensor:
    """[B, H, W, 3] in 0..1 -> [B, H*scale, W*scale, 3] in 0..1, `tile` pixels at a time.

    An image no larger than `tile` on either side runs in one piece, exactly as untiled.
    """
    if model.input_channels != images.shape[-1] or model.output_channels != 3:
        raise UpscaleInputError(
            f"{model.architecture} model takes {model.input_channels} channels and gives "
            f"{model.output_channels}; IMAGE has {images.shape[-1]} (RGB)"
        )
    if tile < MIN_TILE or not 0 <= overlap < tile // 2:
        raise UpscaleInputError(
            f"tile {tile} with overlap {overlap}: tiles are at least {MIN_TILE} pixels and "
            "overlap less than half a tile"
        )
    device, dtype = model.placement
    height, width = images.shape[1:3]
    grid = tile_grid(height, width, tile, overlap)
    results = []
    for index, image in enumerate(images):
        check_cancelled()

        def run(piece: torch.Tensor) -> torch.Tensor:
            return model(piece.to(device, dtype))

        def on_tile(done: int, total: int, index: int = index) -> None:
            progress(index * total + done, len(images) * total)
            check_cancelled()

        output = tiled_map(
            run,
            image.permute(2, 0, 1).unsqueeze(0),
            grid,
            out_channels=3,
            up=model.scale,
            on_tile=on_tile,
        )
        results.append(output.clamp(0, 1).permute(0, 2, 3, 1))
    return torch.cat(results)
