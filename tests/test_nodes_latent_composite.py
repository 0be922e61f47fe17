"""Latent Composite and Latent Composite Masked: where the source lands, feathered edges (as
ComfyUI weights them), masks, batches, clipping at the border and refused positions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from latentloom.models.family import SDXL
from latentloom.models.handles import Latent
from tests.node_calls import node_runner


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Latent]:
    call = node_runner(tmp_path)
    return lambda node_type, **inputs: call(node_type, **inputs)["latent"]


def zeros(batch: int = 1, side: int = 8) -> Latent:
    return Latent(torch.zeros(batch, 4, side, side))


def ones(batch: int = 1, height: int = 4, width: int = 4) -> Latent:
    return Latent(torch.ones(batch, 4, height, width))


def composite(
    run: Callable[..., Latent], x: int, y: int, feather: int = 0, **latents: Latent
) -> torch.Tensor:
    samples_to, samples_from = latents.get("to", zeros()), latents.get("source", ones())
    out = run(
        "latent.composite",
        samples_to=samples_to,
        samples_from=samples_from,
        x=x,
        y=y,
        feather=feather,
    )
    return out.samples


def test_composite_pastes_at_pixel_position_over_eight(run: Callable[..., Latent]) -> None:
    out = composite(run, x=16, y=8)
    expected = torch.zeros(1, 4, 8, 8)
    expected[..., 1:5, 2:6] = 1.0
    assert torch.equal(out, expected)


def test_composite_cuts_the_source_at_the_destination_border(run: Callable[..., Latent]) -> None:
    out = composite(run, x=48, y=40)
    expected = torch.zeros(1, 4, 8, 8)
    expected[..., 5:8, 6:8] = 1.0
    assert torch.equal(out, expected)


def test_composite_feathers_inner_edges_linearly_corners_multiply(
    run: Callable[..., Latent],
) -> None:
    # 16 px = 2 cells of ramp on every side inside the destination: 0.5 then 1.
    out = composite(run, x=16, y=16, feather=16)
    ramp = torch.tensor([0.5, 1.0, 1.0, 0.5])
    assert torch.equal(out[0, 0, 2:6, 2:6], ramp[:, None] * ramp[None, :])
    assert out[0, 0, 2, 2].item() == 0.25
    assert torch.count_nonzero(out[0, 0]).item() == 16  # nothing outside the region


def test_composite_keeps_edges_on_the_border_hard(run: Callable[..., Latent]) -> None:
    out = composite(run, x=0, y=0, feather=16)
    ramp = torch.tensor([1.0, 1.0, 1.0, 0.5])  # the top and left edges lie on the border
    assert torch.equal(out[0, 0, :4, :4], ramp[:, None] * ramp[None, :])


def test_composite_blends_with_the_destination_under_the_feather(
    run: Callable[..., Latent],
) -> None:
    out = composite(run, x=0, y=0, feather=32, to=Latent(torch.full((1, 4, 8, 8), 2.0)))
    # A 4-cell ramp over a 4-cell source: weights 1, 3/4, 2/4, 1/4 towards the inner edge.
    assert out[0, 0, 0, :5].tolist() == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert out[0, 0, 3, 0].item() == 0.25 * 1.0 + 0.75 * 2.0


def test_composite_cycles_the_source_batch_and_keeps_samples_tos_mask(
    run: Callable[..., Latent],
) -> None:
    mask = torch.ones(1, 8, 8)
    to = Latent(torch.zeros(3, 4, 8, 8), SDXL, mask)
    source = Latent(torch.arange(2.0).reshape(2, 1, 1, 1).expand(2, 4, 4, 4).clone())
    out = run("latent.composite", samples_to=to, samples_from=source, x=0, y=0, feather=0)
    assert out.samples[:, 0, 0, 0].tolist() == [0.0, 1.0, 0.0]
    assert out.noise_mask is mask and out.family is SDXL
    assert torch.equal(to.samples, torch.zeros(3, 4, 8, 8))  # the input is untouched


@pytest.mark.parametrize(
    ("node", "names"),
    [
        ("latent.composite", ("samples_to", "samples_from")),
        ("latent.composite_masked", ("destination", "source")),
    ],
)
def test_a_position_where_nothing_would_show_is_refused(
    run: Callable[..., Latent], node: str, names: tuple[str, str]
) -> None:
    inputs = {names[0]: zeros(), names[1]: ones(), "x": 64, "y": 0}
    extra = {"feather": 0} if node == "latent.composite" else {"resize_source": False, "mask": None}
    with pytest.raises(ValueError) as caught:
        run(node, **inputs, **extra)
    assert str(caught.value) == (
        "input 'x': 64 is at or past the destination's width of 64 px, so nothing would be "
        "pasted; the most is 56"
    )
    with pytest.raises(
        ValueError, match=r"^input 'y': 72 is at or past the destination's height of 64 px"
    ):
        run(node, **{**inputs, "x": 0, "y": 72}, **extra)


def masked(
    run: Callable[..., Latent], mask: torch.Tensor | None, **overrides: object
) -> torch.Tensor:
    inputs: dict[str, object] = {
        "destination": Latent(torch.full((1, 4, 8, 8), 2.0)),
        "source": ones(),
        "x": 0,
        "y": 0,
        "resize_source": False,
        "mask": mask,
    }
    inputs.update(overrides)
    return run("latent.composite_masked", **inputs).samples


def test_composite_masked_without_a_mask_pastes_the_source(run: Callable[..., Latent]) -> None:
    out = masked(run, None, x=32, y=32)
    expected = torch.full((1, 4, 8, 8), 2.0)
    expected[..., 4:, 4:] = 1.0
    assert torch.equal(out, expected)


def test_composite_masked_takes_the_source_where_the_mask_is_one(
    run: Callable[..., Latent],
) -> None:
    left = torch.zeros(1, 4, 4)
    left[..., :2] = 1.0
    out = masked(run, left)
    assert out[0, 0, 0, :5].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
    # A mask of another size is resized to the source: a constant one blends everywhere.
    out = masked(run, torch.full((1, 32, 32), 0.25))
    assert out[0, 0, :4, :4].unique().tolist() == [0.25 * 1.0 + 0.75 * 2.0]
    assert out[0, 0, 4:, :].unique().tolist() == [2.0]


def test_composite_masked_resize_source_covers_the_destination(run: Callable[..., Latent]) -> None:
    out = masked(run, None, source=Latent(torch.full((1, 4, 2, 2), 5.0)), resize_source=True)
    assert torch.equal(out, torch.full((1, 4, 8, 8), 5.0))


def test_composite_masked_clips_source_and_mask_together(run: Callable[..., Latent]) -> None:
    # At (48, 48) only the source's top-left 2x2 cells show, and the mask's top-left with them.
    mask = torch.zeros(1, 4, 4)
    mask[:, 0, 0] = 1.0
    out = masked(run, mask, x=48, y=48)
    assert out[0, 0, 6:, 6:].tolist() == [[1.0, 2.0], [2.0, 2.0]]
    assert out[0, 0, :6].unique().tolist() == [2.0]
