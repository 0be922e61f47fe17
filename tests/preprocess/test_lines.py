"""Scribbles and line art: thresholds on luma, Zhang-Suen thinning and disc dilation, worked
on small drawings whose every pixel is known."""

from __future__ import annotations

import pytest
import torch

from latentloom.preprocess.lines import disc, line_art, scribble, thin, widen


def drawing(
    height: int, width: int, ink: list[tuple[slice, slice]], paper: float = 1.0
) -> torch.Tensor:
    """Black ink on paper of the given grey, as a [1, H, W, 3] image."""
    image = torch.full((1, height, width, 3), paper)
    for rows, columns in ink:
        image[0, rows, columns] = 0.0
    return image


def test_discs_are_the_pixels_within_radius_and_a_half() -> None:
    assert disc(0).tolist() == [[1.0]]
    assert disc(1).tolist() == [[1.0] * 3] * 3  # corners at 1.41 < 1.5
    assert disc(2).sum() == 21  # 5x5 less its four corners (2.83 > 2.5)
    assert disc(2)[0].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_dark_strokes_become_white_lines_on_black() -> None:
    image = drawing(6, 8, [(slice(2, 3), slice(1, 7))])
    out = scribble(image, 0.5, "dark_on_light", False, 0)
    assert out.shape == (1, 6, 8, 3)
    assert torch.equal(out[..., 0], out[..., 2])
    expected = torch.zeros(6, 8)
    expected[2, 1:7] = 1.0
    assert torch.equal(out[0, ..., 0], expected)
    # Chalk on a board: the same drawing inverted, read as light_on_dark, gives the same lines.
    assert torch.equal(scribble(1.0 - image, 0.5, "light_on_dark", False, 0), out)


def test_the_threshold_is_on_luma_and_strict() -> None:
    # Pure green is luma 0.587, pure blue 0.114: dark below 0.5 means blue only.
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 0, 1] = 1.0
    image[0, 0, 1, 2] = 1.0
    image[0, 0, 2] = 0.5
    out = scribble(image, 0.5, "dark_on_light", False, 0)[0, 0, :, 0]
    assert out.tolist() == [0.0, 1.0, 0.0]  # green 0.587 no, blue 0.114 yes, grey 0.5 not below


def test_thinning_leaves_a_one_pixel_skeleton_of_a_thick_bar() -> None:
    lines = torch.zeros(1, 9, 20)
    lines[0, 2:7, 2:18] = 1.0  # a bar 5 pixels thick
    skeleton = thin(lines)
    assert skeleton[0, :, 5:15].sum(dim=0).tolist() == [1.0] * 10  # one pixel per column
    assert skeleton[0, 4, 5:15].tolist() == [1.0] * 10  # on the middle row
    assert bool((skeleton <= lines).all())  # only removes
    assert torch.equal(thin(skeleton), skeleton)  # a skeleton is its own skeleton


def test_dilate_adds_that_many_pixels_on_each_side() -> None:
    image = drawing(9, 9, [(slice(4, 5), slice(4, 5))])
    one = scribble(image, 0.5, "dark_on_light", False, 1)[0, ..., 0]
    assert one.sum() == 9 and one[3:6, 3:6].sum() == 9
    two = scribble(image, 0.5, "dark_on_light", False, 2)[0, ..., 0]
    assert torch.equal(two[2:7, 2:7], disc(2)) and two.sum() == 21
    assert torch.equal(widen(one.unsqueeze(0), 0)[0], one)


def test_thin_then_dilate_gives_even_strokes_from_uneven_ones() -> None:
    image = drawing(12, 24, [(slice(3, 8), slice(2, 12)), (slice(4, 7), slice(12, 22))])
    out = scribble(image, 0.5, "dark_on_light", True, 1)[0, ..., 0]
    assert out[:, 5:19].sum(dim=0).tolist() == [3.0] * 14  # 1-pixel skeleton + 1 each side


def test_line_art_is_canny_edges_thickened_white_on_black_or_black_on_white() -> None:
    image = torch.zeros(1, 12, 16, 3)
    image[:, :, 8:] = 1.0  # Canny's edge: column 7
    thin_lines = line_art(image, 0.4, 0.8, 0, "white_on_black")[0, ..., 0]
    assert thin_lines.nonzero()[:, 1].unique().tolist() == [7]
    thick = line_art(image, 0.4, 0.8, 1, "white_on_black")[0, ..., 0]
    assert thick.nonzero()[:, 1].unique().tolist() == [6, 7, 8]
    assert thick[:, 6:9].sum() == 36
    on_paper = line_art(image, 0.4, 0.8, 1, "black_on_white")
    assert torch.equal(on_paper[0, ..., 1], 1.0 - thick)


def test_unknown_choices_are_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown lines 'dark'; expected one of \('dark_on_light', 'light_on_dark'\)",
    ):
        scribble(torch.zeros(1, 4, 4, 3), 0.5, "dark", False, 0)
    with pytest.raises(ValueError, match="unknown style 'inverted'"):
        line_art(torch.zeros(1, 4, 4, 3), 0.4, 0.8, 0, "inverted")


def test_thinning_checks_for_cancellation_between_rounds() -> None:
    calls: list[int] = []

    def cancel_on_second_round() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("cancelled")

    block = torch.ones(1, 12, 12)  # needs several rounds
    with pytest.raises(RuntimeError, match="cancelled"):
        thin(block, cancel_on_second_round)
    assert len(calls) == 2


def _reference_thin(lines: torch.Tensor) -> torch.Tensor:
    """Zhang & Suen as the paper states it: every pixel asked in every sub-pass, until a round
    removes nothing (the whole-image convolution thinning had before, kept as the oracle)."""
    weights = torch.tensor([[128.0, 1.0, 2.0], [64.0, 0.0, 4.0], [32.0, 16.0, 8.0]])
    tables = [torch.zeros(256, dtype=torch.bool), torch.zeros(256, dtype=torch.bool)]
    for code in range(256):
        p = [(code >> bit) & 1 for bit in range(8)]
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        ok = 2 <= sum(p) <= 6 and transitions == 1
        tables[0][code] = ok and p[0] * p[2] * p[4] == 0 and p[2] * p[4] * p[6] == 0
        tables[1][code] = ok and p[0] * p[2] * p[6] == 0 and p[0] * p[4] * p[6] == 0
    pixels = lines.unsqueeze(1)
    changed = True
    while changed:
        changed = False
        for table in tables:
            codes = torch.nn.functional.conv2d(pixels, weights.view(1, 1, 3, 3), padding=1)
            removable = table[codes.to(torch.int64)] & (pixels > 0)
            changed |= bool(removable.any())
            pixels = pixels * ~removable
    return pixels.squeeze(1)


def test_thinning_equals_the_paper_pixel_for_pixel_on_ink_heavy_drawings() -> None:
    generator = torch.Generator().manual_seed(3)
    speckle = (torch.rand(2, 1, 40, 36, generator=generator) > 0.6).float()
    blobs = torch.nn.functional.max_pool2d(speckle, 5, 1, 2).squeeze(1)  # ~95% ink
    blobs[0, 6:26, 6:30] = 1.0  # a filled block: many rounds
    blobs[1, 20:23] = 0.0  # a gap through the second picture
    skeleton = thin(blobs)
    assert torch.equal(skeleton, _reference_thin(blobs))
    assert 0 < skeleton.sum() < blobs.sum() / 4  # it did thin, to a non-empty skeleton
