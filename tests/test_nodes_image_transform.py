"""Image geometry nodes: Image Scale (to a size, by a factor, to total pixels), Image Crop, Pad
Image, Image Flip, Image Rotate. Sizes, values at edges, identities, ComfyUI's rounding and
clamping, Pillow's Lanczos as the oracle, and the size bounds refused with the input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from latentloom.api import UPSCALE_METHODS, from_pil
from latentloom.engine.executor import Engine
from latentloom.engine.file_sizes import FolderFiles
from latentloom.graph.budget import estimate
from latentloom.graph.cost import Batch
from tests.image_node_support import LANDSCAPE, context, image_graph, node_specs, run_node
from tests.support import WORKFLOWS, make_engine

MODULE = "image_transform"


def ramp(height: int, width: int, batch: int = 1) -> torch.Tensor:
    """Distinct values in 0..1, different in each channel and image."""
    count = batch * height * width * 3
    return (torch.arange(count, dtype=torch.float32) / (count - 1)).reshape(batch, height, width, 3)


def scale(image: torch.Tensor, **inputs: object) -> torch.Tensor:
    out: torch.Tensor = run_node(MODULE, "image.scale", image=image, **inputs)
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The built-in pack over no models and the example inputs: validation and small runs."""
    root = tmp_path_factory.mktemp("image_transform")
    return make_engine(root, root / "output", WORKFLOWS / "inputs")


@pytest.mark.parametrize("method", UPSCALE_METHODS)
def test_scaling_to_the_same_size_returns_the_input_exactly(method: str) -> None:
    image = ramp(5, 7, batch=2)
    out = scale(image, upscale_method=method, width=7, height=5)
    assert out.dtype == torch.float32 and out.shape == (2, 5, 7, 3)
    assert torch.equal(out, image)


def test_nearest_exact_doubles_pixels_and_bilinear_interpolates_without_aligned_corners() -> None:
    row = torch.tensor([0.0, 1.0]).reshape(1, 1, 2, 1).expand(1, 1, 2, 3)
    nearest = scale(row, upscale_method="nearest-exact", width=4, height=1)
    assert nearest[0, 0, :, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    # Sample positions (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped at the edges.
    bilinear = scale(row, upscale_method="bilinear", width=4, height=1)
    assert bilinear[0, 0, :, 0].tolist() == [0.0, 0.25, 0.75, 1.0]


def test_area_downscale_is_the_mean_of_each_block() -> None:
    image = ramp(4, 4)
    out = scale(image, upscale_method="area", width=2, height=2)
    expected = image.reshape(1, 2, 2, 2, 2, 3).mean(dim=(2, 4))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)


def test_bicubic_is_clamped_to_0_1_where_its_lobes_overshoot() -> None:
    edge = torch.tensor([0.0, 0.0, 1.0, 1.0]).reshape(1, 1, 4, 1).expand(1, 1, 4, 3)
    raw = F.interpolate(edge.movedim(-1, 1), size=(1, 16), mode="bicubic")
    assert float(raw.min()) < -0.01 and float(raw.max()) > 1.01  # the clamp matters
    out = scale(edge, upscale_method="bicubic", width=16, height=1)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    torch.testing.assert_close(out, raw.clamp(0, 1).movedim(1, -1))


def noise_picture(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("picture", "width", "height"),
    [("landscape", 100, 60), ("noise", 80, 45), ("noise", 20, 30), ("noise", 23, 41)],
)
def test_lanczos_matches_pillows_8_bit_resize_within_a_level_and_a_bit(
    picture: str, width: int, height: int
) -> None:
    if picture == "landscape":
        with Image.open(LANDSCAPE) as opened:
            source = opened.convert("RGB")
    else:
        source = noise_picture(53, 37)  # noise overshoots most: the clamp between passes shows
    expected = from_pil(source.resize((width, height), Image.Resampling.LANCZOS))
    out = scale(from_pil(source), upscale_method="lanczos", width=width, height=height)
    assert out.shape == (1, height, width, 3)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Pillow rounds after each pass and uses fixed-point weights; ours stays float (measured:
    # 1.16 levels apart at most). Without the clamp between passes noise is 0.13 apart.
    assert float((out - expected).abs().max()) <= 1.5 / 255


def test_a_side_of_0_follows_the_other_at_the_aspect_ratio() -> None:
    image = ramp(10, 30)
    assert scale(image, width=0, height=5).shape == (1, 5, 15, 3)
    assert scale(image, width=7, height=0).shape == (1, 2, 7, 3)  # round(10 * 7 / 30) = 2
    assert scale(image, width=0, height=0) is image


def test_center_crop_takes_the_middle_at_the_new_aspect_ratio() -> None:
    image = ramp(2, 4)
    out = scale(image, upscale_method="nearest-exact", width=2, height=2, crop="center")
    assert torch.equal(out, image[:, :, 1:3])
    tall = ramp(6, 2)  # 6 rows to an aspect of 1: rows 2 and 3
    out = scale(tall, upscale_method="nearest-exact", width=2, height=2, crop="center")
    assert torch.equal(out, tall[:, 2:4])


def test_scale_by_rounds_each_side_as_python_does() -> None:
    image = ramp(3, 5)
    out = run_node(MODULE, "image.scale_by", image=image, scale_by=0.5)
    assert out.shape == (1, 2, 2, 3)  # round(1.5) = 2, round(2.5) = 2
    assert run_node(MODULE, "image.scale_by", image=image, scale_by=2.0).shape == (1, 6, 10, 3)


def test_scale_by_refuses_a_factor_that_leaves_no_pixel() -> None:
    with pytest.raises(ValueError) as error:
        run_node(MODULE, "image.scale_by", image=ramp(40, 40), scale_by=0.01)
    assert str(error.value) == (
        "scale_by 0.01 of 40x40 makes a 0x0 image; every side needs a pixel at least"
    )


def test_scale_to_total_pixels_counts_mebipixels_and_rounds_to_the_steps() -> None:
    image = ramp(16, 32)
    out = run_node(MODULE, "image.scale_to_total_pixels", image=image, megapixels=0.125)
    assert out.shape == (1, 256, 512, 3)  # 131,072 = 0.125 x 2^20 pixels at 2:1
    stepped = run_node(
        MODULE, "image.scale_to_total_pixels", image=image, megapixels=0.1, resolution_steps=64
    )
    # sqrt(0.1 x 2^20 / 512) = 14.31 times: 458 x 229, rounded to multiples of 64.
    assert stepped.shape == (1, 256, 448, 3)


def test_crop_cuts_at_the_edges_and_moves_a_corner_past_the_image_onto_it() -> None:
    image = ramp(6, 8, batch=2)
    out = run_node(MODULE, "image.crop", image=image, width=3, height=2, x=4, y=1)
    assert torch.equal(out, image[:, 1:3, 4:7])
    assert torch.equal(run_node(MODULE, "image.crop", image=image, x=5, y=4), image[:, 4:, 5:])
    past = run_node(MODULE, "image.crop", image=image, width=4, height=4, x=100, y=100)
    assert torch.equal(past, image[:, 5:, 7:])  # the bottom-right pixel, as ComfyUI


def test_pad_with_a_colour_and_a_mask_of_the_new_pixels() -> None:
    image = ramp(2, 3, batch=2)
    out, mask = pad(image, left=1, top=2, right=0, bottom=1, mode="constant", color=0xFF8000)
    assert out.shape == (2, 5, 4, 3) and mask.shape == (1, 5, 4)
    assert torch.equal(out[:, 2:4, 1:], image)
    orange = torch.tensor([1.0, 128 / 255, 0.0])  # 0xFF8000 in float32
    assert torch.equal(out[1, 0, 0], orange) and torch.equal(out[0, 4, 3], orange)
    expected = torch.ones(1, 5, 4)
    expected[:, 2:4, 1:] = 0
    assert torch.equal(mask, expected)


@pytest.mark.parametrize(
    ("mode", "rows", "columns"),
    [
        ("edge", [0, 1, 2, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0, 1, 1]),
        # Mirrored about the edge pixel, again and again past the image's width.
        ("reflect", [0, 1, 2, 1, 0, 1, 2], [1, 0, 1, 0, 1, 0, 1, 0]),
    ],
)
def test_pad_repeats_or_mirrors_the_edges_even_past_the_image_width(
    mode: str, rows: list[int], columns: list[int]
) -> None:
    image = ramp(3, 2)
    out, _ = pad(image, left=5, top=0, right=1, bottom=4, mode=mode)
    assert torch.equal(out, image[:, rows][:, :, columns])


def pad(image: torch.Tensor, **inputs: object) -> tuple[torch.Tensor, torch.Tensor]:
    spec = node_specs(MODULE)["image.pad"]
    values = {item.name: item.default for item in spec.inputs} | {"image": image} | inputs
    result = spec.function(context(), **values)
    return result["image"], result["mask"]


def test_flip_about_each_axis_and_twice_is_the_input() -> None:
    image = ramp(3, 4, batch=2)
    vertical = run_node(MODULE, "image.flip", image=image, flip_method="x-axis: vertically")
    assert torch.equal(vertical[:, 0], image[:, 2])
    horizontal = run_node(MODULE, "image.flip", image=image, flip_method="y-axis: horizontally")
    assert torch.equal(horizontal[:, :, 0], image[:, :, 3])
    again = run_node(MODULE, "image.flip", image=horizontal, flip_method="y-axis: horizontally")
    assert torch.equal(again, image)


def test_rotate_turns_clockwise_and_four_turns_are_the_input() -> None:
    image = ramp(2, 3)
    turned = run_node(MODULE, "image.rotate", image=image, rotation="90 degrees")
    assert turned.shape == (1, 3, 2, 3)
    assert torch.equal(turned[0, 0, 1], image[0, 0, 0])  # top-left goes to top-right
    assert torch.equal(turned[0, 2, 1], image[0, 0, 2])  # top-right goes to bottom-right
    half = run_node(MODULE, "image.rotate", image=image, rotation="180 degrees")
    assert torch.equal(half, torch.flip(image, dims=[1, 2]))
    three = run_node(MODULE, "image.rotate", image=image, rotation="270 degrees")
    assert torch.equal(three[0, 2, 0], image[0, 0, 0])  # top-left goes to bottom-left
    out = image
    for _ in range(4):
        out = run_node(MODULE, "image.rotate", image=out, rotation="90 degrees")
    assert torch.equal(out, image)


def test_inputs_are_never_written() -> None:
    image = ramp(4, 4)
    before = image.clone()
    pad(image, left=1, mode="reflect")
    run_node(MODULE, "image.crop", image=image, width=2, height=2)
    run_node(MODULE, "image.rotate", image=image, rotation="90 degrees")
    scale(image, upscale_method="lanczos", width=3, height=3, crop="center")
    assert torch.equal(image, before)


def test_a_size_past_the_largest_side_is_refused_at_validation_naming_the_input(
    engine: Engine,
) -> None:
    # 256x256 cropped to 256x128, then height 8192 at 2:1 asks for a 16384-pixel width.
    workflow = image_graph(
        {
            "crop": {"type": "image.crop", "inputs": {"image": "@load", "height": 128}},
            "scale": {
                "type": "image.scale",
                "inputs": {"image": "@crop", "width": 0, "height": 8192},
            },
        },
        output="scale",
    )
    [problem] = engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("scale", "height", "over_limit")
    assert problem.message == (
        "node \"scale\" (Image Scale) input 'height': height 8192 at the aspect ratio of "
        "256x128 makes a 16384x8192 image; the largest side allowed is 8,192"
    )


def test_padding_past_the_largest_side_is_refused_naming_the_larger_side(engine: Engine) -> None:
    pads = {"image": "@load", "left": 8000, "right": 100}
    workflow = image_graph({"pad": {"type": "image.pad", "inputs": pads}}, output="pad")
    [problem] = engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("pad", "left", "over_limit")
    assert problem.message == (
        "node \"pad\" (Pad Image) input 'left': left 8000 + right 100 pad the width 256 to "
        "8356; the largest side allowed is 8,192"
    )


def test_a_graph_of_transforms_runs_with_the_sizes_its_estimate_predicts(engine: Engine) -> None:
    workflow = image_graph(
        {
            "half": {"type": "image.scale_by", "inputs": {"image": "@load", "scale_by": 0.5}},
            "crop": {"type": "image.crop", "inputs": {"image": "@half", "width": 96}},
            "turn": {
                "type": "image.rotate",
                "inputs": {"image": "@crop", "rotation": "90 degrees"},
            },
            "pad": {"type": "image.pad", "inputs": {"image": "@turn", "top": 8, "mode": "edge"}},
        },
        output="pad",
    )
    assert engine.validate(workflow) == []
    job = estimate(workflow, engine.registry, FolderFiles(engine.settings.folders))
    sizes = {
        node: (b.width, b.height, b.count)
        for (node, _), b in job.estimates.items()
        if isinstance(b, Batch)
    }
    assert sizes == {
        "load": (256, 256, 1),
        "half": (128, 128, 1),
        "crop": (96, 128, 1),
        "turn": (128, 96, 1),
        "pad": (128, 104, 1),
    }
    result = engine.run(workflow, targets=["pad"])
    assert tuple(result.outputs["pad"]["image"].shape) == (1, 96 + 8, 128, 3)
    assert tuple(result.outputs["pad"]["mask"].shape) == (1, 104, 128)
