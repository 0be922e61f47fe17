"""Depth and normal maps from an uploaded depth map: stretch, invert, and the MiDaS normal
post-processing worked out by hand on ramps (Sobel of a ramp of slope s is 8 s)."""

from __future__ import annotations

import math

import torch

from latentloom.preprocess.depth import NORMAL_Z, normal_from_depth, normalize_depth


def grey_map(values: torch.Tensor) -> torch.Tensor:
    """[H, W] values as a grey [1, H, W, 3] image."""
    return values.unsqueeze(0).unsqueeze(-1).expand(1, *values.shape, 3).contiguous()


def ramp(width: int, start: float, stop: float, height: int = 4) -> torch.Tensor:
    return torch.linspace(start, stop, width).expand(height, width).contiguous()


def test_depth_is_stretched_to_black_and_white_per_image() -> None:
    out = normalize_depth(grey_map(ramp(5, 0.2, 0.6)), invert=False)
    assert out.shape == (1, 4, 5, 3)
    torch.testing.assert_close(out[0, 0, :, 0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    inverted = normalize_depth(grey_map(ramp(5, 0.2, 0.6)), invert=True)
    torch.testing.assert_close(inverted[0, 0, :, 1], torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))


def test_a_flat_depth_map_is_black_inverted_or_not() -> None:
    flat = grey_map(torch.full((3, 3), 0.4))
    assert normalize_depth(flat, invert=False).sum() == 0
    assert normalize_depth(flat, invert=True).sum() == 0


def test_a_flat_map_faces_the_camera() -> None:
    out = normal_from_depth(grey_map(torch.full((4, 4), 0.5)), 1.0, 0.0)
    assert torch.equal(out[0, 2, 2], torch.tensor([0.5, 0.5, 1.0]))


def test_a_ramp_tilts_the_normal_by_its_sobel_slope_in_8_bit_levels() -> None:
    # Depth rising 0.1 per pixel to the right: 25.5 levels, Sobel x = 8 x 25.5 = 204.
    depth = ramp(6, 0.0, 0.5)
    for strength in (1.0, 0.5):
        out = normal_from_depth(grey_map(depth), strength, 0.0)
        x = 204.0 * strength
        length = math.hypot(x, NORMAL_Z)
        expected = torch.tensor([0.5 + 0.5 * x / length, 0.5, 0.5 + 0.5 * NORMAL_Z / length])
        torch.testing.assert_close(out[0, 1, 2], expected, rtol=0, atol=1e-5)
    # Reflected borders (without repeating the edge): the first column sees no slope.
    assert torch.equal(out[0, 1, 0], torch.tensor([0.5, 0.5, 1.0]))
    # The same ramp downwards tilts y by as much, x not at all.
    across = normal_from_depth(grey_map(depth), 1.0, 0.0)[0, 1, 2]
    down = normal_from_depth(grey_map(depth.T.contiguous()), 1.0, 0.0)[0, 2, 1]
    torch.testing.assert_close(down, across[[1, 0, 2]], rtol=0, atol=1e-6)


def test_pixels_below_the_background_threshold_face_the_camera() -> None:
    depth = ramp(11, 0.0, 1.0)  # stretched depth = x / 10
    out = normal_from_depth(grey_map(depth), 1.0, 0.45)
    flat = torch.tensor([0.5, 0.5, 1.0])
    for column in range(1, 10):
        tilted = not torch.equal(out[0, 1, column], flat)
        assert tilted == (column / 10 >= 0.45), column
