"""Run an image-to-image function tile by tile and blend the tiles into one result.

Tiled upscaling and tiled VAE encode/decode share this. The input is cut into a grid of
tiles of at most `tile` units per side; neighbouring tiles overlap by `overlap` units, and
tiles are equal and evenly spaced: as few as `tile` allows, each no longer than covering the
image needs (no thin sliver at the far edge, which a model would see with too little context,
and no more pixels computed twice than the overlaps need). Each tile goes through
`function` on its own, so memory holds one tile's activations instead of the whole image's.

Blending: a tile's output is least reliable near its cut edges, where the model saw zero
padding instead of the neighbouring pixels. So each tile is weighted by a ramp that rises
linearly across the overlap from its cut edges (never at the image's own border, where the
untiled model pads the same way), and the weights are normalised to sum to 1 at every pixel.
The weights are separable, a product of a horizontal and a vertical profile, so their sum is
the product of two 1-D sums and no full-size weight image is kept. Away from the overlaps only
one tile covers a pixel, with weight 1: there a tiled result equals the untiled one wherever
the tile's receptive field did not reach a cut edge.

Sizes are in input units; `up`/`down` say how output size follows input size (an upscaler:
up = scale; a VAE decode: up = 8; a VAE encode: down = 8, and tiles then start on multiples
of 8 pixels so each maps to whole latent pixels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

TileFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of one image lie: (start, end) spans per axis, in input units."""

    rows: tuple[tuple[int, int], ...]
    columns: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.columns)


def spans(size: int, tile: int, overlap: int) -> tuple[tuple[int, int], ...]:
    """Evenly spaced equal spans of at most `tile` covering 0..size, neighbours sharing about
    `overlap` (rounding the starts may take one off)."""
    if tile <= 0 or overlap < 0 or overlap >= tile:
        raise ValueError(f"tile {tile} and overlap {overlap}: need tile > overlap >= 0")
    if size <= tile:
        return ((0, size),)
    count = math.ceil((size - overlap) / (tile - overlap))
    # As many tiles as `tile` needs, each only as long as covering the size with `overlap`
    # needs: 1024 pixels in 512-pixel tiles with 64 overlap are 3 tiles of 384, not of 512.
    length = min(tile, math.ceil((size + (count - 1) * overlap) / count))
    starts = [round(index * (size - length) / (count - 1)) for index in range(count)]
    return tuple((start, start + length) for start in starts)


def tile_grid(height: int, width: int, tile: int, overlap: int, *, unit: int = 1) -> TileGrid:
    """The grid for an image; with `unit` > 1 every span starts and ends on a multiple of it."""
    rows = spans(height // unit, max(tile // unit, 1), overlap // unit)
    columns = spans(width // unit, max(tile // unit, 1), overlap // unit)
    return TileGrid(
        tuple((a * unit, b * unit) for a, b in rows),
        tuple((a * unit, b * unit) for a, b in columns),
    )


def _profile(
    span: tuple[int, int], neighbours: tuple[tuple[int, int], ...], up: int, down: int
) -> torch.Tensor:
    """One tile's 1-D weight over its output length: a ramp across each overlapped cut edge."""
    start, end = span
    length = (end - start) * up // down
    weight = torch.ones(length, dtype=torch.float64)
    before = [b for a, b in neighbours if a < start < b]  # the previous tile ends inside ours
    after = [a for a, b in neighbours if a < end < b and a > start]
    if before:
        ramp = (max(before) - start) * up // down
        weight[:ramp] = torch.minimum(weight[:ramp], _ramp(ramp))
    if after:
        ramp = (end - min(after)) * up // down
        weight[length - ramp :] = torch.minimum(weight[length - ramp :], _ramp(ramp).flip(0))
    return weight


def _ramp(width: int) -> torch.Tensor:
    """(1 .. width) / (width + 1): positive everywhere, so every covered pixel has weight."""
    return torch.arange(1, width + 1, dtype=torch.float64) / (width + 1)


def _normalised_profiles(
    axis: tuple[tuple[int, int], ...], up: int, down: int
) -> list[torch.Tensor]:
    """Each tile's profile divided by the sum of all profiles at each output position."""
    profiles = [_profile(span, axis, up, down) for span in axis]
    total = torch.zeros(axis[-1][1] * up // down, dtype=torch.float64)
    for (start, _end), profile in zip(axis, profiles, strict=True):
        offset = start * up // down
        total[offset : offset + len(profile)] += profile
    return [
        profile / total[start * up // down : start * up // down + len(profile)]
        for (start, _end), profile in zip(axis, profiles, strict=True)
    ]


def tiled_map(
    function: TileFunction,
    image: torch.Tensor,
    grid: TileGrid,
    *,
    out_channels: int,
    up: int = 1,
    down: int = 1,
    on_tile: Callable[[int, int], None] = lambda done, total: None,
) -> torch.Tensor:
    """`function` over each tile of `image` [1, C, H, W], blended into [1, out_channels, ...].

    `function` maps a [1, C, h, w] tile to [1, out_channels, h*up/down, w*up/down]; its
    outputs may live on any device and dtype: each is weighted and summed in float32 on the
    CPU, so the full-size result never sits on the device. `on_tile(done, total)` is called
    after each tile (progress, and the place to check for cancellation).
    """
    height = grid.rows[-1][1] * up // down
    width = grid.columns[-1][1] * up // down
    result = torch.zeros(1, out_channels, height, width, dtype=torch.float32)
    row_weights = _normalised_profiles(grid.rows, up, down)
    column_weights = _normalised_profiles(grid.columns, up, down)
    done = 0
    for (top, bottom), row_weight in zip(grid.rows, row_weights, strict=True):
        for (left, right), column_weight in zip(grid.columns, column_weights, strict=True):
            output = function(image[:, :, top:bottom, left:right]).float().cpu()
            weight = (row_weight[:, None] * column_weight[None, :]).float()
            y, x = top * up // down, left * up // down
            expected = (len(row_weight), len(column_weight))
            if tuple(output.shape[-2:]) != expected:
                raise ValueError(
                    f"a {bottom - top}x{right - left} tile gave a {tuple(output.shape[-2:])} "
                    f"output; expected {expected} (scale {up}/{down})"
                )
            result[:, :, y : y + expected[0], x : x + expected[1]] += output * weight
            done += 1
            on_tile(done, grid.count)
    return result
