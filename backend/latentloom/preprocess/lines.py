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
# Weights that turn the 3x3 neighbourhood into its table index: P2 (north) is bit 0, P3
# (north-east) bit 1, and so on clockwise; the centre counts nothing.
_CODE_WEIGHTS = torch.tensor([[128.0, 1.0, 2.0], [64.0, 0.0, 4.0], [32.0, 16.0, 8.0]])


def thin(lines: torch.Tensor, check_cancelled: Callable[[], None] = lambda: None) -> torch.Tensor:
    """[B, H, W] binary lines thinned to one-pixel skeletons (Zhang & Suen). Each sub-pass
    reads every pixel's neighbourhood as an 8-bit code (one convolution) and looks the code up
    in a table of the paper's conditions. A round peels one pixel off each side, so the rounds
    are about half the thickest stroke: a few for pen strokes, hundreds for a filled area
    (a minute at 1024x1024 on two cores), hence the cancellation check between rounds."""
    pixels = (lines > 0.5).to(torch.float32).unsqueeze(1)
    weights = _CODE_WEIGHTS.view(1, 1, 3, 3)
    while True:
        check_cancelled()
        changed = False
        for table in _REMOVABLE:
            codes = F.conv2d(pixels, weights, padding=1).to(torch.int64)
            removable = table[codes] & (pixels > 0)
            if bool(removable.any()):
                pixels = pixels * ~removable
                changed = True
        if not changed:
            return pixels.squeeze(1).to(lines.dtype)


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
