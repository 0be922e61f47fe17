"""Mask nodes: shapes, values at the edges and ComfyUI's semantics for each, scipy as the oracle
for grow/shrink (ComfyUI's own method); Load Image's alpha becomes 1 - alpha."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from latentloom.api import NodeSpec
from tests.support import node_context, pack_module

SPECS: dict[str, NodeSpec] = {spec.id: spec for spec in pack_module("mask").NODES}


def run(node_id: str, **inputs: Any) -> Any:
    spec = SPECS[node_id]
    outputs = spec.function(node_context(), **inputs)
    assert list(outputs) == [output.name for output in spec.outputs]
    return outputs[spec.outputs[0].name]


def dot(height: int, width: int, y: int, x: int) -> torch.Tensor:
    mask = torch.zeros(1, height, width)
    mask[0, y, x] = 1.0
    return mask


def test_every_mask_node_is_named_as_comfyui_and_in_its_category() -> None:
    assert {spec.aliases[0] for spec in SPECS.values()} == {
        "SolidMask",
        "InvertMask",
        "GrowMask",
        "FeatherMask",
        "ThresholdMask",
        "MaskComposite",
        "CropMask",
        "ImageToMask",
        "MaskToImage",
        "ImageColorToMask",
    }
    assert {spec.category for spec in SPECS.values()} == {"mask"}


def test_solid_mask_is_one_mask_of_the_value() -> None:
    mask = run("mask.solid", value=0.25, width=5, height=3)
    assert mask.shape == (1, 3, 5) and mask.dtype == torch.float32
    assert torch.equal(mask, torch.full((1, 3, 5), 0.25))


def test_invert_mask() -> None:
    mask = torch.tensor([[[0.0, 0.25, 1.0]]])
    assert torch.equal(run("mask.invert", mask=mask), torch.tensor([[[1.0, 0.75, 0.0]]]))


def test_grow_one_step_tapered_is_a_cross_and_square_otherwise() -> None:
    cross = run("mask.grow", mask=dot(5, 5, 2, 2), expand=1, tapered_corners=True)
    square = run("mask.grow", mask=dot(5, 5, 2, 2), expand=1, tapered_corners=False)
    assert cross[0].tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert square[0].tolist() == [
        [0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0],
    ]


def test_shrink_keeps_a_full_mask_full_at_the_borders_and_erodes_holes() -> None:
    full = torch.ones(1, 4, 4)
    assert torch.equal(run("mask.grow", mask=full, expand=-3, tapered_corners=True), full)
    holed = 1.0 - dot(5, 5, 0, 0)  # a hole in the corner grows inwards, not past the border
    shrunk = run("mask.grow", mask=holed, expand=-2, tapered_corners=True)
    assert (1 - shrunk[0]).tolist() == [
        [1, 1, 1, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]


@pytest.mark.parametrize("expand", [3, -2])
@pytest.mark.parametrize("tapered", [True, False])
def test_grow_and_shrink_match_scipy_grey_morphology(expand: int, tapered: bool) -> None:
    """ComfyUI grows with scipy.ndimage.grey_dilation/erosion and a 3x3 footprint per step."""
    generator = torch.Generator().manual_seed(5)
    mask = torch.rand(2, 9, 11, generator=generator)
    corner = 0 if tapered else 1
    footprint = np.array([[corner, 1, corner], [1, 1, 1], [corner, 1, corner]])
    expected = []
    for single in mask.numpy():
        for _ in range(abs(expand)):
            step = scipy.ndimage.grey_dilation if expand > 0 else scipy.ndimage.grey_erosion
            single = step(single, footprint=footprint)
        expected.append(single)
    grown = run("mask.grow", mask=mask, expand=expand, tapered_corners=tapered)
    assert torch.equal(grown, torch.from_numpy(np.stack(expected)))


def test_grow_zero_is_the_mask_and_a_huge_expand_stops_when_nothing_changes() -> None:
    mask = dot(3, 4, 1, 1)
    assert torch.equal(run("mask.grow", mask=mask, expand=0, tapered_corners=True), mask)
    grown = run("mask.grow", mask=mask, expand=8192, tapered_corners=True)
    assert torch.equal(grown, torch.ones(1, 3, 4))


def test_feather_ramps_each_edge_linearly_from_1_over_n() -> None:
    ones = torch.ones(1, 4, 6)
    left = run("mask.feather", mask=ones, left=3, top=0, right=0, bottom=0)
    assert torch.allclose(left[0, 0], torch.tensor([1 / 3, 2 / 3, 1, 1, 1, 1]))
    assert torch.equal(left[0, 0], left[0, 3])
    right = run("mask.feather", mask=ones, left=0, top=0, right=2, bottom=0)
    assert right[0, 2].tolist() == [1, 1, 1, 1, 1, 0.5]  # mirror image of the left ramp
    top_bottom = run("mask.feather", mask=ones, left=0, top=2, right=0, bottom=4)
    column = top_bottom[0, :, 0]
    assert torch.allclose(column, torch.tensor([0.5 * 1.0, 1.0 * 0.75, 0.5, 0.25]))


def test_feather_wider_than_the_mask_is_clamped_to_it() -> None:
    feathered = run("mask.feather", mask=torch.ones(1, 1, 4), left=100, top=0, right=0, bottom=0)
    assert feathered[0, 0].tolist() == [0.25, 0.5, 0.75, 1.0]


def test_threshold_is_strictly_above() -> None:
    mask = torch.tensor([[[0.2, 0.5, 0.51, 1.0]]])
    assert run("mask.threshold", mask=mask, value=0.5)[0, 0].tolist() == [0, 0, 1, 1]


def test_composite_touches_only_the_overlap_and_clamps() -> None:
    destination = torch.full((1, 3, 4), 0.6)
    source = torch.full((1, 2, 2), 0.7)
    added = run("mask.composite", destination=destination, source=source, x=3, y=1, operation="add")
    expected = torch.full((1, 3, 4), 0.6)
    expected[0, 1:, 3] = 1.0  # 0.6 + 0.7, clamped; the source's second column falls outside
    assert torch.equal(added, expected)
    subtracted = run(
        "mask.composite", destination=destination, source=source, x=0, y=0, operation="subtract"
    )
    assert subtracted[0, 0].tolist() == [0.0, 0.0, pytest.approx(0.6), pytest.approx(0.6)]
    multiplied = run(
        "mask.composite", destination=destination, source=source, x=0, y=0, operation="multiply"
    )
    assert multiplied[0, 0, 0].item() == pytest.approx(0.42)
    assert torch.equal(destination, torch.full((1, 3, 4), 0.6))  # the input is untouched


@pytest.mark.parametrize(
    ("operation", "expected"), [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]), ("xor", [0, 1, 1, 0])]
)
def test_composite_boolean_operations_round_first(operation: str, expected: list[int]) -> None:
    destination = torch.tensor([[[0.4, 0.6, 0.1, 0.8]]])  # rounds to 0 1 0 1
    source = torch.tensor([[[0.2, 0.3, 0.9, 0.7]]])  # rounds to 0 0 1 1
    result = run(
        "mask.composite", destination=destination, source=source, x=0, y=0, operation=operation
    )
    assert result[0, 0].tolist() == expected


def test_composite_outside_the_destination_changes_nothing() -> None:
    destination = torch.full((1, 2, 2), 0.5)
    result = run(
        "mask.composite",
        destination=destination,
        source=torch.ones(1, 2, 2),
        x=5,
        y=0,
        operation="add",
    )
    assert torch.equal(result, destination)


def test_composite_repeats_a_single_mask_over_the_other_batch() -> None:
    destination = torch.stack([torch.zeros(2, 2), torch.full((2, 2), 0.5)])
    result = run(
        "mask.composite",
        destination=destination,
        source=torch.ones(1, 1, 1),
        x=1,
        y=1,
        operation="add",
    )
    assert result.shape == (2, 2, 2)
    assert result[:, 1, 1].tolist() == [1.0, 1.0] and result[:, 0, 0].tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match="destination holds 2 masks and source 3"):
        run(
            "mask.composite",
            destination=destination,
            source=torch.ones(3, 1, 1),
            x=0,
            y=0,
            operation="add",
        )


def test_crop_cuts_to_the_mask_and_refuses_a_start_outside() -> None:
    mask = torch.arange(20, dtype=torch.float32).reshape(1, 4, 5)
    cropped = run("mask.crop", mask=mask, x=3, y=2, width=10, height=1)
    assert cropped.tolist() == [[[13.0, 14.0]]]
    with pytest.raises(ValueError, match="outside the 5x4 mask; x must be below 5"):
        run("mask.crop", mask=mask, x=5, y=0, width=1, height=1)


def test_image_to_mask_takes_a_channel_and_alpha_is_opaque() -> None:
    image = torch.tensor([[[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]]])  # [1, 1, 2, 3]
    assert torch.equal(run("mask.from_image", image=image, channel="green"), image[..., 1])
    assert torch.equal(run("mask.from_image", image=image, channel="alpha"), torch.ones(1, 1, 2))


def test_mask_to_image_is_grey() -> None:
    image = run("mask.to_image", mask=torch.tensor([[[0.0, 0.25]]]))
    assert image.shape == (1, 1, 2, 3)
    assert image[0, 0].tolist() == [[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]]


def test_image_color_to_mask_compares_the_rounded_8_bit_colour() -> None:
    red = [1.0, 0.0, 0.0]
    near_red = [254.6 / 255, 0.4 / 255, 0.0]  # rounds to (255, 0, 0)
    off_red = [254.4 / 255, 0.0, 0.0]  # rounds to (254, 0, 0)
    over = [1.5, -0.2, 0.0]  # clamped to (255, 0, 0)
    image = torch.tensor([[[red, near_red, off_red, over]]])
    assert run("mask.from_color", image=image, color=0xFF0000)[0, 0].tolist() == [1, 1, 0, 1]
    grey = torch.full((1, 1, 1, 3), 128 / 255)
    assert run("mask.from_color", image=grey, color=0x808080).item() == 1.0


def test_load_image_mask_is_one_minus_alpha(tmp_path: Path) -> None:
    load_image = pack_module("image").load_image
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = [[255, 0, 51], [255, 255, 255]]
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "holed.png")
    Image.fromarray(rgba[..., :3], mode="RGB").save(tmp_path / "opaque.png")
    holed = load_image(node_context(tmp_path), "holed.png")
    assert list(holed) == ["image", "mask"]
    assert holed["image"].shape == (1, 2, 3, 3)
    assert holed["mask"].shape == (1, 2, 3) and holed["mask"].dtype == torch.float32
    alpha = torch.tensor([[[255.0, 0.0, 51.0], [255.0, 255.0, 255.0]]]) / 255.0
    assert torch.equal(holed["mask"], 1.0 - alpha)
    assert holed["mask"][0, 0, :2].tolist() == [0.0, 1.0]
    opaque = load_image(node_context(tmp_path), "opaque.png")
    assert torch.equal(opaque["mask"], torch.zeros(1, 2, 3))
    assert torch.equal(opaque["image"], holed["image"])


def test_load_image_reads_a_palette_image_transparent_index_as_alpha(tmp_path: Path) -> None:
    load_image = pack_module("image").load_image
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 255, 255, 255])
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 1
    palette.save(tmp_path / "palette.png", transparency=1)
    loaded = load_image(node_context(tmp_path), "palette.png")
    assert loaded["mask"].tolist() == [[[0.0, 1.0]]]
