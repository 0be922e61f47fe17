"""Latent Crop, Flip Latent, Rotate Latent, Upscale Latent By: exact cells moved, the noise mask
moved with them, sizes as ComfyUI rounds them, bounds at validation and at run time."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.graph.budget import estimate
from latentloom.graph.cost import Batch
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.models.family import SDXL
from latentloom.models.handles import Latent
from tests.node_calls import bare_engine as make_bare_engine
from tests.node_calls import builtin_registry, node_runner


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Latent]:
    call = node_runner(tmp_path)
    return lambda node_type, **inputs: call(node_type, **inputs)["latent"]


@pytest.fixture(scope="module")
def bare_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return make_bare_engine(tmp_path_factory.mktemp("bare"))


def grid(height: int, width: int) -> torch.Tensor:
    """One image whose cell (r, c) holds 10r + c in every channel: positions show."""
    rows = torch.arange(height, dtype=torch.float32)[:, None] * 10
    return (rows + torch.arange(width, dtype=torch.float32)).expand(1, 4, height, width).clone()


def one_transform(node_type: str, side: int, **inputs: Any) -> Workflow:
    """Empty Latent (side x side px) -> the node -> Save Latent."""
    return parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "empty": {
                    "type": "latent.empty",
                    "inputs": {"width": side, "height": side, "batch": 2},
                },
                "node": {
                    "type": node_type,
                    "inputs": {"samples": {"node": "empty", "output": "latent"}, **inputs},
                },
                "save": {
                    "type": "latent.save",
                    "inputs": {"latent": {"node": "node", "output": "latent"}},
                },
            },
        }
    )


def estimated(workflow: Workflow) -> Batch:
    found = estimate(workflow, builtin_registry()).estimates[("node", "latent")]
    assert isinstance(found, Batch)
    return found


# Crop


def test_crop_takes_the_region_in_pixels_over_eight(run: Callable[..., Latent]) -> None:
    out = run("latent.crop", samples=Latent(grid(6, 6), SDXL), width=24, height=16, x=8, y=16)
    assert out.samples[0, 0].tolist() == [[21.0, 22.0, 23.0], [31.0, 32.0, 33.0]]
    assert out.family is SDXL and out.noise_mask is None


def test_crop_reaching_past_the_edge_is_cut_there(
    run: Callable[..., Latent], bare_engine: Engine
) -> None:
    out = run("latent.crop", samples=Latent(grid(6, 6)), width=512, height=512, x=32, y=40)
    assert out.samples[0, 0].tolist() == [[54.0, 55.0]]
    assert estimated(one_transform("latent.crop", 64, width=512, height=512, x=32, y=40)) == Batch(
        32, 24, 2, "node"
    )


def test_crop_moves_a_pixel_mask_with_the_cells(run: Callable[..., Latent]) -> None:
    mask = torch.zeros(1, 48, 48)
    mask[:, 16:24, 8:16] = 1.0  # exactly latent cell (2, 1)
    out = run("latent.crop", samples=Latent(grid(6, 6), None, mask), width=16, height=16, x=8, y=16)
    assert out.noise_mask is not None and out.noise_mask.shape == (1, 16, 16)
    assert out.noise_mask[0, :8, :8].unique().tolist() == [1.0]
    assert out.noise_mask.sum().item() == 64.0


def test_crop_resizes_a_mask_off_the_grid_to_the_latent_first(run: Callable[..., Latent]) -> None:
    out = run(
        "latent.crop",
        samples=Latent(grid(6, 6), None, torch.full((2, 5, 7), 0.5)),
        width=16,
        height=24,
        x=0,
        y=0,
    )
    assert out.noise_mask is not None and out.noise_mask.shape == (2, 3, 2)
    assert out.noise_mask.unique().tolist() == [0.5]


def test_crop_starting_past_the_latent_is_refused(
    run: Callable[..., Latent], bare_engine: Engine
) -> None:
    with pytest.raises(ValueError) as caught:
        run("latent.crop", samples=Latent(grid(6, 6)), width=64, height=64, x=48, y=0)
    assert str(caught.value) == (
        "input 'x': 48 is at or past the latent's width of 48 px, so the crop would be empty; "
        "the most is 40"
    )
    [problem] = bare_engine.validate(one_transform("latent.crop", 64, x=0, y=64))
    assert (problem.node, problem.input, problem.code) == ("node", "y", "over_limit")
    assert problem.message == (
        "node \"node\" (Latent Crop) input 'y': 64 is at or past the latent's height of 64 px, "
        "so the crop would be empty; the most is 56"
    )


# Flip and rotate


def test_flip_x_axis_turns_upside_down_and_y_axis_mirrors(run: Callable[..., Latent]) -> None:
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    upside_down = run(
        "latent.flip", samples=Latent(grid(2, 3), None, mask), flip_method="x-axis: vertically"
    )
    assert upside_down.samples[0, 0].tolist() == [[10.0, 11.0, 12.0], [0.0, 1.0, 2.0]]
    assert upside_down.noise_mask is not None and upside_down.noise_mask.tolist() == [
        [[0.0, 0.0], [1.0, 0.0]]
    ]
    mirrored = run(
        "latent.flip", samples=Latent(grid(2, 3), None, mask), flip_method="y-axis: horizontally"
    )
    assert mirrored.samples[0, 0].tolist() == [[2.0, 1.0, 0.0], [12.0, 11.0, 10.0]]
    assert mirrored.noise_mask is not None and mirrored.noise_mask.tolist() == [
        [[0.0, 1.0], [0.0, 0.0]]
    ]


def test_rotate_90_degrees_is_clockwise(run: Callable[..., Latent]) -> None:
    mask = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # top-left goes top-right
    out = run("latent.rotate", samples=Latent(grid(2, 3), SDXL, mask), rotation="90 degrees")
    assert out.samples[0, 0].tolist() == [[10.0, 0.0], [11.0, 1.0], [12.0, 2.0]]
    assert out.noise_mask is not None and out.noise_mask.tolist() == [
        [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    ]
    assert out.family is SDXL


@pytest.mark.parametrize(
    ("rotation", "turns"), [("none", 0), ("180 degrees", 2), ("270 degrees", 3)]
)
def test_rotations_are_quarter_turns(run: Callable[..., Latent], rotation: str, turns: int) -> None:
    samples = grid(2, 3)
    out = run("latent.rotate", samples=Latent(samples), rotation=rotation).samples
    once = samples
    for _ in range(turns):
        once = run("latent.rotate", samples=Latent(once), rotation="90 degrees").samples
    assert torch.equal(out, once)


def test_quarter_turns_swap_the_estimated_sides() -> None:
    workflow = parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "empty": {
                    "type": "latent.empty",
                    "inputs": {"width": 128, "height": 64, "batch": 1},
                },
                "node": {
                    "type": "latent.rotate",
                    "inputs": {
                        "samples": {"node": "empty", "output": "latent"},
                        "rotation": "270 degrees",
                    },
                },
                "save": {
                    "type": "latent.save",
                    "inputs": {"latent": {"node": "node", "output": "latent"}},
                },
            },
        }
    )
    assert estimated(workflow) == Batch(64, 128, 1, "empty")


# Upscale By


def test_upscale_by_rounds_each_side_as_comfyui(run: Callable[..., Latent]) -> None:
    # 3 x 1.5 = 4.5 rounds to 4 (half to even, Python's round), 5 x 1.5 = 7.5 to 8.
    out = run(
        "latent.upscale_by",
        samples=Latent(torch.zeros(1, 4, 3, 5)),
        upscale_method="bilinear",
        scale_by=1.5,
    )
    assert out.samples.shape == (1, 4, 4, 8)


def test_upscale_by_two_nearest_repeats_every_cell(run: Callable[..., Latent]) -> None:
    mask = torch.ones(1, 16, 24)
    out = run(
        "latent.upscale_by",
        samples=Latent(grid(2, 3), SDXL, mask),
        upscale_method="nearest-exact",
        scale_by=2.0,
    )
    assert out.samples[0, 0, :2].tolist() == [[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]] * 2
    assert out.noise_mask is mask and out.family is SDXL  # a mask is resized when sampling


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"])
def test_upscale_by_one_is_the_identity(run: Callable[..., Latent], method: str) -> None:
    samples = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(1))
    out = run("latent.upscale_by", samples=Latent(samples), upscale_method=method, scale_by=1.0)
    torch.testing.assert_close(out.samples, samples, rtol=0, atol=1e-6)


def test_bislerp_keeps_length_between_orthogonal_vectors_and_lerps_opposite_ones(
    run: Callable[..., Latent],
) -> None:
    pair = torch.zeros(2, 4, 1, 2)
    pair[0, 0, 0, 0], pair[0, 1, 0, 1] = 1.0, 1.0  # orthogonal unit vectors
    pair[1, 0, 0, 0], pair[1, 0, 0, 1] = 2.0, -2.0  # opposite vectors
    # 2 -> 3 cells: the middle one sits halfway between the two.
    out = run(
        "latent.upscale_by", samples=Latent(pair), upscale_method="bislerp", scale_by=1.5
    ).samples
    half = math.sqrt(0.5)
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor([half, half, 0.0, 0.0]))
    torch.testing.assert_close(out[1, :, 0, 1], torch.zeros(4))
    assert out[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0, 0.0] and out[0, :, 0, 2].tolist() == [
        0.0,
        1.0,
        0.0,
        0.0,
    ]


def test_upscale_by_past_the_side_limit_or_to_nothing_is_refused(
    run: Callable[..., Latent], bare_engine: Engine
) -> None:
    [problem] = bare_engine.validate(
        one_transform("latent.upscale_by", 2048, upscale_method="bilinear", scale_by=4.5)
    )
    assert (problem.node, problem.input, problem.code) == ("node", "scale_by", "over_limit")
    assert problem.message == (
        "node \"node\" (Upscale Latent By) input 'scale_by': 4.5 makes a 9216x9216 image; "
        "the most is 8192 px a side"
    )
    with pytest.raises(ValueError) as caught:
        run(
            "latent.upscale_by",
            samples=Latent(torch.zeros(1, 4, 8, 8)),
            upscale_method="area",
            scale_by=0.05,
        )
    assert str(caught.value) == "input 'scale_by': 0.05 shrinks the latent to nothing (0x0 px)"
    assert estimated(
        one_transform("latent.upscale_by", 64, upscale_method="bilinear", scale_by=1.5)
    ) == Batch(96, 96, 2, "node")
