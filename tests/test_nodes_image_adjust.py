"""Pixel value nodes: Invert Image, Image Blend (ComfyUI's six modes on hand-worked values),
Image Blur and Image Sharpen (ComfyUI's kernels against a hand-written convolution), Adjust
Colors (identity at its defaults, Pillow's ImageEnhance as the oracle)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance

from latentloom.api import from_pil
from latentloom.engine.executor import Engine
from tests.image_node_support import LANDSCAPE, image_graph, node_module, run_node
from tests.support import WORKFLOWS, make_engine

MODULE = "image_adjust"


def pixels(*values: float) -> torch.Tensor:
    """A 1 x N image whose N pixels are grey at these values."""
    return torch.tensor(values).reshape(1, 1, -1, 1).expand(1, 1, len(values), 3).contiguous()


def blend(image1: torch.Tensor, image2: torch.Tensor, mode: str, factor: float) -> torch.Tensor:
    out: torch.Tensor = run_node(
        MODULE, "image.blend", image1=image1, image2=image2, blend_mode=mode, blend_factor=factor
    )
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("image_adjust")
    return make_engine(root, root / "output", WORKFLOWS / "inputs")


def test_invert_is_one_minus_each_value() -> None:
    out = run_node(MODULE, "image.invert", image=pixels(0.0, 0.25, 1.0))
    assert out[0, 0, :, 0].tolist() == [1.0, 0.75, 0.0]


# image1 = (0.2, 0.6), image2 = (0.4, 0.9), worked by hand from ComfyUI's formulas.
BLENDED = {
    "normal": (0.4, 0.9),
    "multiply": (0.2 * 0.4, 0.6 * 0.9),
    "screen": (1 - 0.8 * 0.6, 1 - 0.4 * 0.1),
    # image1 <= 0.5: 2ab; above: 1 - 2(1-a)(1-b)
    "overlay": (2 * 0.2 * 0.4, 1 - 2 * 0.4 * 0.1),
    # image2 <= 0.5: a - (1-2b)a(1-a); above: a + (2b-1)(sqrt(a) - a) for a > 0.25
    "soft_light": (0.2 - 0.2 * 0.2 * 0.8, 0.6 + 0.8 * (math.sqrt(0.6) - 0.6)),
    "difference": (0.2 - 0.4, 0.6 - 0.9),  # signed, as ComfyUI; clamped after the mix
}


@pytest.mark.parametrize("mode", sorted(BLENDED))
def test_each_blend_mode_at_full_factor_gives_the_hand_worked_values(mode: str) -> None:
    out = blend(pixels(0.2, 0.6), pixels(0.4, 0.9), mode, 1.0)
    expected = pixels(*BLENDED[mode]).clamp(0, 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_soft_light_below_a_quarter_uses_the_polynomial_and_difference_keeps_the_positive() -> None:
    # a = 0.2 <= 0.25, b = 0.9: D(a) = ((16a - 12)a + 4)a = 0.448; a + 0.8 (0.448 - 0.2).
    out = blend(pixels(0.2), pixels(0.9), "soft_light", 1.0)
    torch.testing.assert_close(out, pixels(0.3984), rtol=0, atol=1e-6)
    out = blend(pixels(0.9, 0.5), pixels(0.2, 0.5), "difference", 1.0)
    torch.testing.assert_close(out, pixels(0.7, 0.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", sorted(BLENDED))
def test_blend_factor_0_is_image1_exactly_and_half_is_the_mean(mode: str) -> None:
    image1, image2 = pixels(0.2, 0.6), pixels(0.4, 0.9)
    assert torch.equal(blend(image1, image2, mode, 0.0), image1)
    expected = pixels(*((a + b) / 2 for a, b in zip((0.2, 0.6), BLENDED[mode], strict=True)))
    torch.testing.assert_close(blend(image1, image2, mode, 0.5), expected, rtol=0, atol=1e-6)


def test_blend_fits_image2_to_image1s_size_and_cycles_its_batch() -> None:
    image1 = torch.full((3, 4, 4, 3), 0.5)
    image2 = torch.stack([torch.full((2, 6, 3), 0.1), torch.full((2, 6, 3), 0.9)])
    out = blend(image1, image2, "normal", 1.0)
    assert out.shape == (3, 4, 4, 3)
    assert [float(v) for v in out[:, 2, 1, 0]] == pytest.approx([0.1, 0.9, 0.1], abs=1e-6)


def test_the_gaussian_kernel_is_comfyuis_on_a_minus_1_to_1_grid() -> None:
    kernel = node_module(MODULE).gaussian_kernel(1, 1.0)
    # Taps at -1, 0, 1: weights exp(-d^2 / 2) for d^2 = 0 (centre), 1 (edges), 2 (corners).
    centre, edge, corner = 1.0, math.exp(-0.5), math.exp(-1.0)
    total = centre + 4 * edge + 4 * corner
    expected = torch.tensor([[corner, edge, corner], [edge, centre, edge], [corner, edge, corner]])
    torch.testing.assert_close(kernel, expected / total, rtol=0, atol=1e-7)
    # sigma 2 over radius 2: taps at -1, -0.5, 0, 0.5, 1 and exp(-d^2 / 8).
    wide = node_module(MODULE).gaussian_kernel(2, 2.0)
    assert float(wide[2, 3] / wide[2, 2]) == pytest.approx(math.exp(-0.25 / 8), abs=1e-7)


def reference_filter(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The convolution written out: every tap of every pixel, indices mirrored at the edges."""
    radius = kernel.shape[0] // 2
    _, height, width, _ = image.shape

    def mirror(index: int, size: int) -> int:
        index = -index if index < 0 else index
        return 2 * (size - 1) - index if index > size - 1 else index

    out = torch.zeros_like(image, dtype=torch.float64)
    for y in range(height):
        for x in range(width):
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    tap = float(kernel[dy + radius, dx + radius])
                    out[:, y, x] += tap * image[:, mirror(y + dy, height), mirror(x + dx, width)]
    return out.float()


def test_blur_is_the_kernel_over_the_mirrored_image() -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 5, 6, 3)
    out = run_node(MODULE, "image.blur", image=image, blur_radius=2, sigma=0.7)
    kernel = node_module(MODULE).gaussian_kernel(2, 0.7)
    torch.testing.assert_close(out, reference_filter(image, kernel), rtol=0, atol=1e-6)
    # A lone bright pixel in the middle keeps the centre tap's share.
    dot = torch.zeros(1, 5, 5, 3)
    dot[0, 2, 2] = 1.0
    blurred = run_node(MODULE, "image.blur", image=dot, blur_radius=1, sigma=1.0)
    centre = 1 / (1 + 4 * math.exp(-0.5) + 4 * math.exp(-1.0))
    assert float(blurred[0, 2, 2, 0]) == pytest.approx(centre, abs=1e-7)
    flat = torch.full((1, 4, 4, 3), 0.3)
    torch.testing.assert_close(
        run_node(MODULE, "image.blur", image=flat, blur_radius=3), flat, rtol=0, atol=1e-7
    )


def comfy_sharpen_kernel(radius: int, sigma: float, alpha: float) -> torch.Tensor:
    """ComfyUI's construction: the Gaussian times -10 alpha, its centre raised to sum to 1."""
    kernel = node_module(MODULE).gaussian_kernel(radius, sigma) * -(alpha * 10)
    kernel[radius, radius] = kernel[radius, radius] - kernel.sum() + 1.0
    return kernel


def test_sharpen_is_comfyuis_kernel_written_out_over_the_mirrored_image() -> None:
    kernel = comfy_sharpen_kernel(1, 1.0, 1.0)
    gaussian = node_module(MODULE).gaussian_kernel(1, 1.0)
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(kernel[1, 1]) == pytest.approx(11 - 10 * float(gaussian[1, 1]), abs=1e-5)
    torch.manual_seed(1)
    image = torch.rand(1, 4, 5, 3)
    out = run_node(MODULE, "image.sharpen", image=image, sharpen_radius=1, sigma=1.0, alpha=1.0)
    expected = reference_filter(image, kernel).clamp(0, 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0  # strong: clamped both ways
    gentle = run_node(MODULE, "image.sharpen", image=image, sharpen_radius=2, sigma=0.6, alpha=0.05)
    expected = reference_filter(image, comfy_sharpen_kernel(2, 0.6, 0.05)).clamp(0, 1)
    torch.testing.assert_close(gentle, expected, rtol=0, atol=1e-5)


def test_sharpen_with_alpha_0_is_the_input_exactly() -> None:
    torch.manual_seed(2)
    image = torch.rand(1, 4, 5, 3)
    out = run_node(MODULE, "image.sharpen", image=image, sharpen_radius=2, alpha=0.0)
    assert torch.equal(out, image)


def test_a_radius_the_image_is_too_small_to_mirror_is_refused_with_the_most_allowed() -> None:
    with pytest.raises(ValueError) as error:
        run_node(MODULE, "image.blur", image=torch.zeros(1, 3, 8, 3), blur_radius=3)
    assert str(error.value) == (
        "blur_radius 3 reflects the image at its edges, which needs every side longer than 3 "
        "pixels; this image is 8x3: use a blur_radius of at most 2"
    )


def test_a_radius_too_large_for_a_known_size_is_refused_at_validation(engine: Engine) -> None:
    workflow = image_graph(
        {
            "crop": {"type": "image.crop", "inputs": {"image": "@load", "width": 20, "height": 9}},
            "sharpen": {"type": "image.sharpen", "inputs": {"image": "@crop", "sharpen_radius": 9}},
        },
        output="sharpen",
    )
    [problem] = engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == (
        "sharpen",
        "sharpen_radius",
        "over_limit",
    )
    assert problem.message.endswith("this image is 20x9: use a sharpen_radius of at most 8")


def test_adjust_colors_at_its_defaults_is_the_input_exactly() -> None:
    torch.manual_seed(3)
    image = torch.rand(2, 3, 4, 3)
    assert torch.equal(run_node(MODULE, "image.adjust_colors", image=image), image)


@pytest.mark.parametrize(
    ("name", "factor", "enhancer"),
    [
        ("brightness", 1.3, ImageEnhance.Brightness),
        ("brightness", 0.5, ImageEnhance.Brightness),
        ("contrast", 0.6, ImageEnhance.Contrast),
        ("contrast", 1.8, ImageEnhance.Contrast),
        ("saturation", 0.3, ImageEnhance.Color),
        ("saturation", 2.0, ImageEnhance.Color),
    ],
)
def test_brightness_contrast_saturation_agree_with_pillows_image_enhance(
    name: str, factor: float, enhancer: type[ImageEnhance._Enhance]
) -> None:
    with Image.open(LANDSCAPE) as opened:
        picture = opened.convert("RGB")
    expected = from_pil(enhancer(picture).enhance(factor))  # type: ignore[call-arg]
    out = run_node(MODULE, "image.adjust_colors", image=from_pil(picture), **{name: factor})
    # Pillow works in 8 bits, its grey, mean and result rounded or cut to a level (measured:
    # 1.25 levels apart at most): within one and a half.
    assert float((out - expected).abs().max()) <= 1.5 / 255


def test_saturation_0_is_the_luma_grey_contrast_0_the_mean_and_gamma_a_power() -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    grey = run_node(MODULE, "image.adjust_colors", image=red, saturation=0.0)
    torch.testing.assert_close(grey, torch.full((1, 1, 1, 3), 0.299), rtol=0, atol=1e-7)
    two = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).reshape(1, 1, 2, 3)
    flat = run_node(MODULE, "image.adjust_colors", image=two, contrast=0.0)
    torch.testing.assert_close(flat, torch.full((1, 1, 2, 3), 0.5), rtol=0, atol=1e-7)
    lighter = run_node(MODULE, "image.adjust_colors", image=pixels(0.25, 1.0, 0.0), gamma=2.0)
    assert lighter[0, 0, :, 0].tolist() == [0.5, 1.0, 0.0]  # x^(1/2)


def test_adjusting_never_writes_its_input() -> None:
    image = pixels(0.2, 0.6)
    before = image.clone()
    run_node(MODULE, "image.adjust_colors", image=image, brightness=2.0, gamma=0.5)
    blend(image, pixels(0.9, 0.9), "overlay", 0.7)
    run_node(MODULE, "image.sharpen", image=torch.zeros(1, 3, 3, 3))
    assert torch.equal(image, before)


def test_blend_keeps_the_fitted_layers_bicubic_overshoot_until_its_own_clamp() -> None:
    # As ComfyUI: image2 is resized without clamping, so below-zero lobes darken the blend.
    edge = torch.tensor([0.0, 0.0, 1.0, 1.0]).reshape(1, 1, 4, 1).expand(1, 2, 4, 3)
    raw = F.interpolate(edge.movedim(-1, 1), size=(8, 16), mode="bicubic").movedim(1, -1)
    assert float(raw.min()) < -0.01
    out = blend(torch.full((1, 8, 16, 3), 0.5), edge, "normal", 0.5)
    torch.testing.assert_close(out, (0.25 + 0.5 * raw).clamp(0, 1), rtol=0, atol=1e-6)
