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


def _neighbours(pixels: torch.Tensor) -> list[torch.Tensor]:
    """P2..P9 of Zhang & Suen (north, then clockwise) for every pixel; 0 outside the image."""
    padded = F.pad(pixels, (1, 1, 1, 1))
    height, width = pixels.shape[-2:]
    offsets = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    return [padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in offsets]


def _removable(pixels: torch.Tensor, second_pass: bool) -> torch.Tensor:
    p = _neighbours(pixels)
    count = sum(p)
    ring = [*p, p[0]]
    transitions = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))
    p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
    if second_pass:
        sides = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
    else:
        sides = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
    return (pixels == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & sides


def thin(lines: torch.Tensor) -> torch.Tensor:
    """[B, H, W] binary lines thinned to one-pixel skeletons (Zhang & Suen)."""
    pixels = lines.to(torch.uint8)
    while True:
        changed = False
        for second_pass in (False, True):
            removable = _removable(pixels, second_pass)
            if bool(removable.any()):
                pixels = pixels * ~removable
                changed = True
        if not changed:
            return pixels.to(lines.dtype)


def scribble(
    image: torch.Tensor, threshold: float, lines: str, thin_lines: bool, dilate: int
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
        binary = thin(binary)
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
