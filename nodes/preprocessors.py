"""Preprocessors that need no downloaded weights: Canny, scribble, line art, depth, normal.

Each is a `Preprocessor` declaration over a plain function of `latentloom.api`; the nodes are
made by `preprocessor_nodes` (IMAGE in, IMAGE out, run image by image with progress), the same
way a pack adds a model-based preprocessor. Canny is ComfyUI's core class (kornia's detector,
reproduced in torch: its thresholds are on the unnormalised Sobel magnitude); the others carry
the names of the community ControlNet preprocessors they stand in for, so search finds them,
but compute their own documented thing: scribble is a luma threshold, line art is widened
Canny edges, depth and normal start from a depth map the user already has.
"""

from __future__ import annotations

import torch

from latentloom.api import (
    LINE_ART_STYLES,
    LINE_COLOURS,
    Input,
    NodeContext,
    Preprocessor,
    boolean_input,
    canny_edges,
    enum_input,
    float_input,
    int_input,
    line_art,
    normal_from_depth,
    normalize_depth,
    preprocessor_nodes,
    scribble_lines,
)

MAX_DILATE = 16


def _threshold(name: str, default: float) -> Input:
    return float_input(name, default, min=0.01, max=0.99, step=0.01)


def canny(
    ctx: NodeContext, image: torch.Tensor, low_threshold: float, high_threshold: float
) -> torch.Tensor:
    # ComfyUI repeats the one-channel edge map into the three channels of an IMAGE.
    edges = canny_edges(image, low_threshold, high_threshold)
    return edges.unsqueeze(-1).expand(*edges.shape, 3).contiguous()


def scribble(
    ctx: NodeContext,
    image: torch.Tensor,
    threshold: float,
    lines: str,
    thin_lines: bool,
    dilate: int,
) -> torch.Tensor:
    return scribble_lines(image, threshold, lines, thin_lines, dilate, ctx.check_cancelled)


def lineart(
    ctx: NodeContext,
    image: torch.Tensor,
    low_threshold: float,
    high_threshold: float,
    dilate: int,
    style: str,
) -> torch.Tensor:
    return line_art(image, low_threshold, high_threshold, dilate, style)


def depth(ctx: NodeContext, image: torch.Tensor, invert: bool) -> torch.Tensor:
    return normalize_depth(image, invert)


def normal(
    ctx: NodeContext, image: torch.Tensor, strength: float, bg_threshold: float
) -> torch.Tensor:
    return normal_from_depth(image, strength, bg_threshold)


PREPROCESSORS = (
    Preprocessor(
        id="preprocess.canny",
        display_name="Canny",
        aliases=("Canny", "CannyEdgePreprocessor", "Canny Edge"),
        description="White one-pixel edges on black (ComfyUI's Canny: kornia's detector). "
        "Thresholds are on the Sobel gradient magnitude of the blurred grey image, where a "
        "black-to-white step reaches about 2.6: weak edges are above low_threshold, strong "
        "ones above high_threshold, and weak edges are kept where they touch strong ones.",
        inputs=(_threshold("low_threshold", 0.4), _threshold("high_threshold", 0.8)),
        run=canny,
    ),
    Preprocessor(
        id="preprocess.scribble",
        display_name="Scribble (Threshold)",
        aliases=("ScribblePreprocessor", "Scribble Lines", "Threshold Lines"),
        description="A drawing as white strokes on black for scribble ControlNets: the pixels "
        "whose grey is below the threshold (dark lines on paper) or above it (light on dark) "
        "are strokes. thin_lines reduces them to one-pixel skeletons; dilate then adds that "
        "many pixels on each side.",
        inputs=(
            float_input("threshold", 0.5, min=0.0, max=1.0, step=0.01),
            enum_input("lines", LINE_COLOURS),
            boolean_input("thin_lines", False),
            int_input("dilate", 0, min=0, max=MAX_DILATE),
        ),
        run=scribble,
    ),
    Preprocessor(
        id="preprocess.lineart",
        display_name="Line Art (from Edges)",
        aliases=("LineArtPreprocessor", "LineartStandardPreprocessor", "Lineart"),
        description="Line art without a model: Canny edges (same thresholds as Canny) with "
        "dilate pixels added on each side, white on black as line-art ControlNets take them, "
        "or black on white to look at.",
        inputs=(
            _threshold("low_threshold", 0.2),
            _threshold("high_threshold", 0.5),
            int_input("dilate", 1, min=0, max=MAX_DILATE),
            enum_input("style", LINE_ART_STYLES),
        ),
        run=lineart,
    ),
    Preprocessor(
        id="preprocess.depth_map",
        display_name="Depth (from Depth Map)",
        aliases=("MiDaS-DepthMapPreprocessor", "Depth Map"),
        description="A depth map you already have (near bright) stretched to black..white per "
        "image, as depth ControlNets take it; invert for maps where far is bright. A flat map "
        "carries no depth and gives black.",
        inputs=(boolean_input("invert", False),),
        run=depth,
    ),
    Preprocessor(
        id="preprocess.normal_map",
        display_name="Normal (from Depth Map)",
        aliases=("MiDaS-NormalMapPreprocessor", "Normal Map"),
        description="A normal map from a depth map (near bright), as the MiDaS normal "
        "annotator computes it: Sobel slopes of the depth in 8-bit levels times strength for "
        "x and y, 2π for z, flat where the stretched depth is below bg_threshold; colour "
        "0.5 + 0.5 x the unit normal.",
        inputs=(
            float_input("strength", 1.0, min=0.0, max=100.0, step=0.05),
            float_input("bg_threshold", 0.1, min=0.0, max=1.0, step=0.01),
        ),
        run=normal,
    ),
)

NODES = preprocessor_nodes(PREPROCESSORS)
