"""Canny in torch against kornia's `filters.canny` (what ComfyUI's Canny node runs), pixel for
pixel, and on cases worked by hand: a step gives a one-pixel line beside it, thresholds act
monotonically, flat images have no edges, bad thresholds are refused with the fix."""

from __future__ import annotations

import kornia
import pytest
import torch
from PIL import Image

from latentloom.api import from_pil
from latentloom.preprocess.canny import canny_edges, gaussian_taps
from tests.support import WORKFLOWS

THRESHOLDS = [(0.4, 0.8), (0.1, 0.2), (0.3, 0.3), (0.05, 0.99)]


def kornia_edges(image: torch.Tensor, low: float, high: float) -> torch.Tensor:
    edges: torch.Tensor = kornia.filters.canny(image.movedim(-1, 1), low, high)[1]
    return edges[:, 0]


def sample_images() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    with Image.open(WORKFLOWS / "inputs" / "landscape.png") as opened:
        landscape = from_pil(opened.convert("RGB"))
    noise = torch.rand(2, 37, 41, 3, generator=generator)
    blocks = torch.rand(1, 8, 8, 3, generator=generator).round()
    blocks = blocks.repeat_interleave(6, dim=1).repeat_interleave(6, dim=2)  # 48x48, hard edges
    return [landscape, noise, blocks]


@pytest.mark.parametrize(("low", "high"), THRESHOLDS)
def test_edges_equal_kornias_pixel_for_pixel(low: float, high: float) -> None:
    for image in sample_images():
        ours = canny_edges(image, low, high)
        assert ours.shape == image.shape[:3]
        assert torch.equal(ours, kornia_edges(image, low, high))


def test_a_vertical_step_gives_one_line_on_its_left_side_in_every_row() -> None:
    image = torch.zeros(1, 12, 16, 3)
    image[:, :, 8:] = 1.0
    edges = canny_edges(image, 0.4, 0.8)
    assert edges[0].nonzero()[:, 1].unique().tolist() == [7]
    assert edges[0, :, 7].tolist() == [1.0] * 12


def test_a_horizontal_step_gives_one_line_beside_it_across_every_column() -> None:
    image = torch.zeros(1, 16, 12, 3)
    image[:, 8:] = 1.0
    edges = canny_edges(image, 0.4, 0.8)
    # Rows 7 and 8 tie up to float rounding, which puts kornia's line (and ours) on row 8.
    assert edges[0].nonzero()[:, 0].unique().tolist() == [8]
    assert edges[0, 8].tolist() == [1.0] * 12
    assert torch.equal(edges, kornia_edges(image, 0.4, 0.8))


def test_a_step_is_an_edge_below_its_peak_magnitude_and_not_above() -> None:
    # After the blur a unit step peaks at 2.5873 (8 x the blurred slope): thresholds are in
    # those units, so ComfyUI's whole 0.01..0.99 range sees a black-white step.
    image = torch.zeros(1, 12, 16, 3)
    image[:, :, 8:] = 1.0
    assert canny_edges(image, 2.58, 2.58).sum() == 12
    assert canny_edges(image, 2.59, 2.59).sum() == 0
    assert canny_edges(image * 0.3, 0.77, 0.77).sum() == 12  # 0.3 x 2.5873 = 0.776
    assert canny_edges(image * 0.3, 0.78, 0.78).sum() == 0


def test_raising_either_threshold_never_adds_an_edge() -> None:
    image = sample_images()[0]
    previous = canny_edges(image, 0.01, 0.99)
    for high in (0.8, 0.6, 0.4, 0.2):  # lowering high adds strong seeds
        edges = canny_edges(image, 0.01, high)
        assert bool((edges >= previous).all())
        previous = edges
    previous = canny_edges(image, 0.01, 0.2)
    for low in (0.05, 0.1, 0.15, 0.2):
        edges = canny_edges(image, low, 0.2)
        assert bool((edges <= previous).all())
        previous = edges
    assert previous.sum() > 0


def test_weak_edges_survive_only_when_they_touch_a_strong_one() -> None:
    # Column 8 steps up by 0.5 in the top row fading to 0.15 in the bottom one (peaks 1.29 to
    # 0.39: strong at the top, weak below); column 24 steps up by 0.25 everywhere (weak).
    image = torch.zeros(1, 24, 40, 3)
    image[0, :, 8:16] = torch.linspace(0.5, 0.15, 24).view(24, 1, 1)
    image[:, :, 24:32] = 0.25
    edges = canny_edges(image, 0.3, 0.8)
    assert torch.equal(edges, kornia_edges(image, 0.3, 0.8))
    assert edges[0, :, 7:9].sum(dim=1).tolist() == [1.0] * 24  # one line, all the way down
    assert edges[0, :, 20:28].sum() == 0  # the isolated weak line is gone
    # The bottom rows on their own are weak everywhere: without the strong top, no edges.
    assert canny_edges(image[:, 18:], 0.3, 0.8).sum() == 0
    assert edges[0, 18:].sum() == 2 * 6  # ...but here they hang on to it (two steps per row)
    assert canny_edges(image, 0.3, 0.6)[0, :, 20:28].sum() == 24  # 0.65 > 0.6: now strong


def test_a_flat_image_has_no_edges_and_the_blur_is_a_sigma_1_gaussian() -> None:
    assert canny_edges(torch.full((1, 9, 9, 3), 0.7), 0.01, 0.02).sum() == 0
    taps = gaussian_taps()
    torch.testing.assert_close(
        taps, torch.tensor([0.0545, 0.2442, 0.4026, 0.2442, 0.0545]), atol=1e-4, rtol=0
    )


def test_a_low_threshold_above_the_high_one_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError) as error:
        canny_edges(torch.zeros(1, 8, 8, 3), 0.6, 0.5)
    assert str(error.value) == (
        "low_threshold 0.6 must be above 0 and at most high_threshold 0.5: lower "
        "low_threshold or raise high_threshold"
    )
    with pytest.raises(ValueError, match="at least 3x3 pixels"):
        canny_edges(torch.zeros(1, 2, 8, 3), 0.1, 0.2)
