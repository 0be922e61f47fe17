"""Depth and normal maps from a depth map the user already has (no depth model is run).

Depth: the map's luma, stretched per image to 0..1 (the way depth annotators hand their
prediction on: min to black, max to white; near is bright for MiDaS-style maps, `invert` flips
a map where far is bright). A flat map carries no depth and gives black.

Normal: the MiDaS normal post-processing of ControlNet's annotators, applied to the uploaded
map: the 3x3 Sobel gradient of the depth in 8-bit levels (borders reflected without repeating
the edge, as OpenCV's default) gives x and y, z is the constant 2π (the annotator's default
`a`), pixels whose stretched depth is below `bg_threshold` get x = y = 0 (the background faces
the camera), and the unit normal is written as colour 0.5 + 0.5 * (x, y, z). `strength`
multiplies x and y: the annotator's `a` of 2π / strength.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from latentloom.preprocess.canny import grey

NORMAL_Z = 2.0 * math.pi  # ControlNet's MiDaS normal: `a`, the z of every unnormalised normal
LEVELS = 255.0  # the gradient is taken in 8-bit levels, as the annotator's depth arrays are


def stretched(depth: torch.Tensor) -> torch.Tensor:
    """[B, H, W] values stretched to 0..1 per image; a flat image becomes 0."""
    flat = depth.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = flat.max(dim=1).values.view(-1, 1, 1) - low
    return torch.where(span > 0, (depth - low) / span.clamp_min(1e-12), torch.zeros_like(depth))


def normalize_depth(image: torch.Tensor, invert: bool) -> torch.Tensor:
    """[B, H, W, 3] depth maps as grey [B, H, W, 3] images stretched to 0..1."""
    depth = stretched(grey(image.to(torch.float32)).squeeze(1))
    if invert:
        depth = torch.where(depth.flatten(1).amax(1).view(-1, 1, 1) > 0, 1.0 - depth, depth)
    return depth.unsqueeze(-1).expand(*depth.shape, 3).contiguous()


def normal_from_depth(image: torch.Tensor, strength: float, bg_threshold: float) -> torch.Tensor:
    """[B, H, W, 3] depth maps (near bright) as [B, H, W, 3] normal maps (see the module doc)."""
    depth = grey(image.to(torch.float32))  # [B, 1, H, W]
    kernel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kernel_x, kernel_x.T]).unsqueeze(1)
    # Reflecting needs two pixels a side; a one-pixel-wide map has no slope across anyway.
    mode = "reflect" if min(depth.shape[-2:]) > 1 else "replicate"
    gradients = F.conv2d(F.pad(depth * LEVELS, (1, 1, 1, 1), mode=mode), kernels)
    foreground = stretched(depth.squeeze(1)) >= bg_threshold
    x, y = (gradients[:, axis] * strength * foreground for axis in (0, 1))
    z = torch.full_like(x, NORMAL_Z)
    normal = torch.stack([x, y, z], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    return (normal * 0.5 + 0.5).clamp(0.0, 1.0)
