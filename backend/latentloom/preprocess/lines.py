"""Line images without a model: scribbles from a drawing, line art from Canny edges.

Both give what the scribble and line-art ControlNets were trained on: white lines on black.
A scribble is a threshold on luma (the lines are the dark pixels of a drawing on paper, or the
light ones of chalk on a board), optionally thinned to one-pixel skeletons (Zhang & Suen 1984,
"A fast parallel algorithm for thinning digital patterns": two sub-passes per round, each
removing the border pixels whose removal keeps the shape connected, until none is removed)
and widened again by a disc. Line art is Canny's one-pixel edges widened by a disc to the
line width a line-art detector draws; `black_on_white` turns it into a drawing on paper.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from latentloom.preprocess.canny import canny_edges, grey

LINE_COLOURS = ("dark_on_light", "light_on_dark")
LINE_ART_STYLES = ("white_on_black", "black_on_white")


def to_image(lines: torch.Tensor) -> torch.Tensor:
    """[B, H, W] values as a grey [B, H, W, 3] image."""
    return lines.unsqueeze(-1).expand(*lines.shape, 3).contiguous()


def disc(radius: int) -> torch.Tensor:
    """A (2r+1)^2 kernel of the pixels whose centres lie within r + 0.5 of the centre."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    inside = offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2 <= (radius + 0.5) ** 2
    return inside.to(torch.float32)


def widen(lines: torch.Tensor, radius: int) -> torch.Tensor:
    """[B, H, W] binary lines grown by a disc of `radius` pixels (0 keeps them)."""
    if radius == 0:
        return lines
    kernel = disc(radius).view(1, 1, 2 * radius + 1, 2 * radius + 1)
    grown = F.conv2d(lines.unsqueeze(1), kernel, padding=radius) > 0.5
    return grown.squeeze(1).to(lines.dtype)


def _removable_table(second_pass: bool) -> torch.Tensor:
    """Zhang & Suen's test for each of the 256 neighbourhoods: bit i of the index is P(i+2)
    (P2 north, then clockwise). True: a foreground pixel with these neighbours is removed."""
    table = torch.zeros(256, dtype=torch.bool)
    for code in range(256):
        p = [(code >> bit) & 1 for bit in range(8)]
        count = sum(p)
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        if second_pass:
            sides = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
        else:
            sides = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        table[code] = 2 <= count <= 6 and transitions == 1 and sides
    return table


_REMOVABLE = (_removable_table(False), _removable_table(True))
# The neighbours P2 (north), P3 (north-east), ... P9 (north-west) as (row, column) steps, in
# the bit order of the table index.
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def thin(lines: torch.Tensor, check_cancelled: Callable[[], None] = lambda: None) -> torch.Tensor:
    """[B, H, W] binary lines thinned to one-pixel skeletons (Zhang & Suen).

    A sub-pass only looks at pixels whose answer may have changed: a pixel's removability
    depends on its 8 neighbours and the sub-pass's condition alone, so one not next to a pixel
    removed in the previous two sub-passes (the last time the same condition was asked) gives
    the same answer as then. The first two sub-passes look at every stroke pixel. The work is
    then proportional to the pixels removed, not to rounds x image: a filled 1024x1024 area
    thins in seconds instead of minutes. Pixels live in one flat, zero-padded array, so a
    neighbour is an index offset and the code an 8-bit sum, looked up in the paper's table.
    """
    width = lines.shape[-1]
    # numpy, not torch: these are thousands of small gathers, where torch's per-op threading
    # costs ten times the work on a busy machine.
    padded = np.pad((lines > 0.5).numpy(force=True), ((0, 0), (1, 1), (1, 1))).astype(np.uint8)
    flat = padded.reshape(-1)
    stride = width + 2
    offsets = np.array([row * stride + column for row, column in _NEIGHBOURS], dtype=np.int64)
    bits = np.array([1 << bit for bit in range(8)], dtype=np.uint8)
    tables = tuple(table.numpy() for table in _REMOVABLE)
    # Stroke pixels next to the removals of the previous sub-pass and of the one before.
    touched: list[np.ndarray] = []
    step = 0
    while True:
        if step % 2 == 0:
            check_cancelled()  # between rounds, as before: a round is one peel on each side
        if step < 2:
            candidates = flat.nonzero()[0]
        else:
            candidates = np.unique(np.concatenate(touched[-2:]))
            candidates = candidates[flat[candidates] > 0]
        if not candidates.size:
            break
        codes = (flat[candidates[:, None] + offsets] * bits).sum(axis=1, dtype=np.int64)
        removed = candidates[tables[step % 2][codes]]
        flat[removed] = 0
        around = (removed[:, None] + offsets).reshape(-1)
        touched = [touched[-1] if touched else around[:0], around[flat[around] > 0]]
        step += 1
    return torch.from_numpy(padded[:, 1:-1, 1:-1].copy()).to(lines.dtype)


def scribble(
    image: torch.Tensor,
    threshold: float,
    lines: str,
    thin_lines: bool,
    dilate: int,
    check_cancelled: Callable[[], None] = lambda: None,
) -> torch.Tensor:
    """[B, H, W, 3] drawings as white-on-black scribbles.

    `lines`: which pixels are the strokes, those with luma below `threshold` ("dark_on_light")
    or above it ("light_on_dark"); `thin_lines` reduces strokes to one-pixel skeletons, then
    `dilate` pixels are added on each side of every stroke (0 keeps them as they are).
    """
    if lines not in LINE_COLOURS:
        raise ValueError(f"unknown lines {lines!r}; expected one of {LINE_COLOURS}")
    luma = grey(image.to(torch.float32)).squeeze(1)
    strokes = (luma < threshold) if lines == "dark_on_light" else (luma > threshold)
    binary = strokes.to(torch.float32)
    if thin_lines:
        binary = thin(binary, check_cancelled)
    return to_image(widen(binary, dilate))


def line_art(
    image: torch.Tensor, low_threshold: float, high_threshold: float, dilate: int, style: str
) -> torch.Tensor:
    """[B, H, W, 3] images as line drawings: Canny's one-pixel edges with `dilate` pixels
    added on each side (lines 2 * dilate + 1 wide)."""
    if style not in LINE_ART_STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {LINE_ART_STYLES}")
    edges = widen(canny_edges(image, low_threshold, high_threshold), dilate)
    return to_image(edges if style == "white_on_black" else 1.0 - edges)
