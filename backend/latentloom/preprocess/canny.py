"""Canny edges in plain torch, with the semantics of `kornia.filters.canny` (ComfyUI's Canny).

ComfyUI's Canny node runs kornia's detector with its defaults, so the same steps are done here
in the same order: ITU-R 601 grey, a 5x5 Gaussian of sigma 1 (reflected at the borders, one
pass per axis), the unnormalised 3x3 Sobel gradient (borders replicated), whose magnitude is
about 8x the slope (a unit step reaches ~2.59 after the blur, so thresholds of 0.01..0.99 are
in those units), then non-maximum suppression along the gradient rounded to 45 degrees, the
double threshold (strict: weak above `low`, strong above `high`) and hysteresis.

Suppression breaks ties the way kornia 0.9 and OpenCV do: along a horizontal (vertical)
gradient a pixel must beat its left (upper) neighbour strictly and at least equal its right
(lower) one, so of two equal pixels across a step the left (upper) one is the edge; along a
diagonal it must beat both strictly. Hysteresis promotes weak pixels touching a strong one
(8-neighbours) until nothing changes; one 3x3 max-pool per round finds those neighbours.
`tests/preprocess/test_canny.py` compares the edge maps with kornia's bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ITU-R 601 luma, kornia's rgb_to_grayscale weights.
LUMA = (0.299, 0.587, 0.114)
GAUSSIAN_SIZE = 5
GAUSSIAN_SIGMA = 1.0
# sqrt(eps) is the magnitude of a flat pixel (kornia adds eps under the square root).
EPSILON = 1e-6
# Neighbour offsets (dy, dx) by gradient direction in 45-degree steps, 0 = +x, 2 = +y.
_NEIGHBOURS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))


def grey(image: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] images as [B, 1, H, W] luma."""
    red, green, blue = image.movedim(-1, 1).unbind(1)
    return (LUMA[0] * red + LUMA[1] * green + LUMA[2] * blue).unsqueeze(1)


def gaussian_taps(size: int = GAUSSIAN_SIZE, sigma: float = GAUSSIAN_SIGMA) -> torch.Tensor:
    """A normalised 1-D Gaussian sampled at integer offsets from the centre tap."""
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    taps = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def blur(grey_image: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] blurred by the 5x5 Gaussian, reflected at the borders (rows, then columns)."""
    taps = gaussian_taps().to(grey_image)
    pad = GAUSSIAN_SIZE // 2
    padded = F.pad(grey_image, (pad, pad, pad, pad), mode="reflect")
    rows = F.conv2d(padded, taps.view(1, 1, 1, -1))
    return F.conv2d(rows, taps.view(1, 1, -1, 1))


def sobel(grey_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The unnormalised Sobel gradient (d/dx, d/dy) of [B, 1, H, W], borders replicated."""
    kernel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kernel_x, kernel_x.T]).unsqueeze(1).to(grey_image)
    gradients = F.conv2d(F.pad(grey_image, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients[:, :1], gradients[:, 1:]


def suppressed_magnitude(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """The gradient magnitude, zero except at maxima along the gradient (see the module doc)."""
    height, width = gx.shape[-2:]
    # Outside the image the gradient is 0, so a border pixel compares with sqrt(eps) there.
    padded = torch.sqrt(F.pad(gx, (1, 1, 1, 1)) ** 2 + F.pad(gy, (1, 1, 1, 1)) ** 2 + EPSILON)
    magnitude = padded[..., 1 : 1 + height, 1 : 1 + width]
    direction = (torch.nan_to_num(torch.atan2(gy, gx)) * (4 / math.pi)).round()
    forward = (direction % 8).long()
    backward = ((direction + 4) % 8).long()
    neighbours = torch.stack(
        [padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _NEIGHBOURS]
    )
    keep = magnitude > math.sqrt(EPSILON)  # a flat pixel is never an edge
    for index in (forward, backward):
        neighbour = torch.gather(neighbours, 0, index.unsqueeze(0)).squeeze(0)
        # Ties count as a win only against the +x and +y neighbours (directions 0 and 2).
        tie_wins = (index == 0) | (index == 2)
        keep &= (magnitude > neighbour) | (tie_wins & (magnitude == neighbour))
    return magnitude * keep


def hysteresis(weak: torch.Tensor, strong: torch.Tensor) -> torch.Tensor:
    """Strong pixels plus the weak ones connected to them through 8-neighbours."""
    edges = strong.to(torch.float32)
    candidates = weak & ~strong
    while True:
        touching = F.max_pool2d(edges, 3, stride=1, padding=1) > 0
        grown = edges.bool() | (candidates & touching)
        if torch.equal(grown, edges.bool()):
            return grown
        edges = grown.to(torch.float32)


def canny_edges(image: torch.Tensor, low_threshold: float, high_threshold: float) -> torch.Tensor:
    """[B, H, W, 3] images (0..1) as [B, H, W] edge maps of 0 and 1."""
    if not 0 < low_threshold <= high_threshold:
        raise ValueError(
            f"low_threshold {low_threshold} must be above 0 and at most high_threshold "
            f"{high_threshold}: lower low_threshold or raise high_threshold"
        )
    if min(image.shape[1:3]) < GAUSSIAN_SIZE // 2 + 1:
        raise ValueError(
            f"Canny needs an image of at least 3x3 pixels (its blur reflects 2 pixels at each "
            f"border); this one is {image.shape[2]}x{image.shape[1]}"
        )
    gx, gy = sobel(blur(grey(image.to(torch.float32))))
    magnitude = suppressed_magnitude(gx, gy)
    edges = hysteresis(magnitude > low_threshold, magnitude > high_threshold)
    return edges.squeeze(1).to(torch.float32)
