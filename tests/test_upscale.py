"""Tiled upscaling: the tile grid and blend are exact, and a tiled 4x equals the untiled one
within 1e-5 away from tile seams and within 5e-3 at them (tiny ESRGAN, measured 1.9e-3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.models.tiny_upscale import make_tiny_upscaler
from latentloom.models.upscale_model import UpscaleModel, load_upscale_model
from latentloom.tiling import spans, tile_grid, tiled_map
from latentloom.upscale import UpscaleInputError, upscale_images

RECEPTIVE_RADIUS = 19  # input pixels: 17 convolutions at 1x, then 2 at 2x and 3 at 4x
SEAM_TOLERANCE = 5e-3


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> UpscaleModel:
    path = make_tiny_upscaler(tmp_path_factory.mktemp("upscale") / "x4.safetensors")
    return load_upscale_model(path, device=torch.device("cpu"))


def images(count: int, height: int, width: int) -> torch.Tensor:
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    ("size", "tile", "overlap", "expected"),
    [
        (64, 64, 16, ((0, 64),)),
        (80, 48, 16, ((0, 48), (32, 80))),
        (96, 48, 16, ((0, 43), (26, 69), (53, 96))),
        (160, 96, 16, ((0, 88), (72, 160))),
        (113, 64, 16, ((0, 49), (32, 81), (64, 113))),
        (1024, 512, 64, ((0, 384), (320, 704), (640, 1024))),
    ],
)
def test_spans_are_even_equal_tiles_no_longer_than_needed(
    size: int, tile: int, overlap: int, expected: tuple[tuple[int, int], ...]
) -> None:
    assert spans(size, tile, overlap) == expected


def test_a_span_overlap_must_be_less_than_the_tile() -> None:
    with pytest.raises(ValueError, match="tile 32 and overlap 32: need tile > overlap >= 0"):
        spans(100, 32, 32)


def test_encode_grids_start_on_whole_latent_pixels() -> None:
    grid = tile_grid(200, 120, 64, 16, unit=8)
    assert grid.rows == ((0, 64), (48, 112), (88, 152), (136, 200))
    assert grid.columns == ((0, 56), (32, 88), (64, 120))


@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2)])
def test_the_blend_weights_sum_to_one_everywhere(up: int, down: int) -> None:
    source = torch.rand(1, 2, 96, 80, generator=torch.Generator().manual_seed(0))
    grid = tile_grid(96, 80, 40, 12, unit=down)

    def resize(tile: torch.Tensor) -> torch.Tensor:
        if up > 1:
            return torch.nn.functional.interpolate(tile, scale_factor=up, mode="nearest")
        return tile[:, :, ::down, ::down]

    blended = tiled_map(resize, source, grid, out_channels=2, up=up, down=down)
    torch.testing.assert_close(blended, resize(source), rtol=0, atol=1e-6)


def seam_mask(height: int, width: int, tile: int, overlap: int, scale: int) -> torch.Tensor:
    """Output pixels within the receptive radius of a cut edge of any tile covering them."""
    grid = tile_grid(height, width, tile, overlap)

    def near(axis: tuple[tuple[int, int], ...], size: int) -> torch.Tensor:
        cuts = [edge for start, end in axis for edge in (start, end) if 0 < edge < size]
        position = torch.arange(size)
        close = torch.zeros(size, dtype=torch.bool)
        for cut in cuts:
            close |= (position - cut).abs() < RECEPTIVE_RADIUS
        return close.repeat_interleave(scale)

    return near(grid.rows, height)[:, None] | near(grid.columns, width)[None, :]


def test_tiled_equals_untiled_away_from_seams(model: UpscaleModel) -> None:
    source = images(1, 160, 176)
    untiled = upscale_images(model, source, tile=512)
    tiled = upscale_images(model, source, tile=96, overlap=16)
    assert tiled.shape == untiled.shape == (1, 640, 704, 3)
    difference = (tiled - untiled).abs()[0].amax(-1)
    seams = seam_mask(160, 176, 96, 16, 4)
    assert 0.2 < seams.float().mean().item() < 0.9  # both regions are substantial
    assert difference[~seams].max().item() <= 1e-5
    assert 0 < difference[seams].max().item() <= SEAM_TOLERANCE


def test_the_receptive_radius_the_seam_band_assumes_holds(model: UpscaleModel) -> None:
    source = images(1, 64, 64)
    touched = source.clone()
    touched[0, 32, 32] += 0.25
    changed = (upscale_images(model, touched) - upscale_images(model, source)).abs()[0]
    rows, columns = changed.amax(-1).nonzero(as_tuple=True)
    assert rows.numel() > 0
    reach = max((rows // 4 - 32).abs().max().item(), (columns // 4 - 32).abs().max().item())
    assert reach < RECEPTIVE_RADIUS


def test_an_image_within_one_tile_runs_untiled_bit_for_bit(model: UpscaleModel) -> None:
    source = images(1, 40, 56)
    # A contiguous input, as each image is laid out for the model (strides steer the kernels).
    direct = model(source.permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1)
    assert torch.equal(upscale_images(model, source, tile=64, overlap=8), direct)


def test_each_image_of_a_batch_is_upscaled_and_progress_counts_tiles(model: UpscaleModel) -> None:
    source = images(2, 48, 80)
    seen: list[tuple[int, int]] = []
    batch = upscale_images(model, source, tile=48, overlap=8, progress=lambda *p: seen.append(p))
    single = upscale_images(model, source[1:], tile=48, overlap=8)
    assert torch.equal(batch[1:], single)
    assert seen == [(done, 4) for done in range(1, 5)]  # 1 x 2 tiles per image, 2 images


def test_a_grey_image_or_an_impossible_tile_is_refused(model: UpscaleModel) -> None:
    with pytest.raises(UpscaleInputError) as grey:
        upscale_images(model, torch.rand(1, 8, 8, 1))
    assert str(grey.value) == "ESRGAN model takes 3 channels and gives 3; IMAGE has 1 (RGB)"
    with pytest.raises(UpscaleInputError) as tile:
        upscale_images(model, images(1, 8, 8), tile=64, overlap=32)
    assert str(tile.value) == (
        "tile 64 with overlap 32: tiles are at least 32 pixels and overlap less than half a tile"
    )


def test_cancelling_stops_between_tiles(model: UpscaleModel, tmp_path: Path) -> None:
    calls = []

    def cancel() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        upscale_images(model, images(1, 96, 96), tile=40, overlap=8, check_cancelled=cancel)
    assert len(calls) == 3  # before the image, after tiles 1 and 2 of 9
