"""Batch and composite nodes: Batch Images, Image From Batch, Repeat Image Batch, Image
Composite Masked. Order and sizes of batches, ComfyUI's fitting and clamping, mask semantics
(all zero keeps the destination, all one pastes the source), batch limits refused by input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.engine.file_sizes import FolderFiles
from latentloom.graph.budget import estimate
from latentloom.graph.cost import Batch
from tests.image_node_support import image_graph, run_node
from tests.support import WORKFLOWS, make_engine

MODULE = "image_batch"


def solid(*values: float, height: int = 2, width: int = 2) -> torch.Tensor:
    """One image per value, each a flat grey."""
    return torch.tensor(values).reshape(-1, 1, 1, 1).expand(-1, height, width, 3).contiguous()


def composite(destination: torch.Tensor, source: torch.Tensor, **inputs: object) -> torch.Tensor:
    out: torch.Tensor = run_node(
        MODULE, "image.composite_masked", destination=destination, source=source, **inputs
    )
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("image_batch")
    return make_engine(root, root / "output", WORKFLOWS / "inputs")


def test_batch_images_puts_image2_after_image1() -> None:
    out = run_node(MODULE, "image.batch", image1=solid(0.1, 0.2), image2=solid(0.3))
    assert torch.equal(out, solid(0.1, 0.2, 0.3))


def test_batch_images_fits_image2_to_image1_bilinear_and_centre_cropped() -> None:
    image1 = solid(0.5, height=2, width=2)
    columns = torch.tensor([0.0, 0.2, 0.4, 0.6]).reshape(1, 1, 4, 1).expand(1, 2, 4, 3)
    out = run_node(MODULE, "image.batch", image1=image1, image2=columns)
    assert out.shape == (2, 2, 2, 3)
    # 4 wide to an aspect of 1: the middle two columns, then an identity resize.
    torch.testing.assert_close(out[1], columns[0, :, 1:3], rtol=0, atol=1e-7)


def test_batch_images_past_the_largest_batch_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        run_node(
            MODULE, "image.batch", image1=torch.zeros(60, 1, 1, 3), image2=torch.zeros(5, 1, 1, 3)
        )
    assert str(error.value) == (
        "image1 (60) and image2 (5) make a batch of 65 images; the most is 64"
    )


@pytest.mark.parametrize(
    ("batch_index", "length", "taken"),
    [(0, 1, [0]), (1, 2, [1, 2]), (2, 10, [2, 3]), (9, 3, [3])],
)
def test_image_from_batch_cuts_its_range_at_the_batchs_end(
    batch_index: int, length: int, taken: list[int]
) -> None:
    batch = solid(0.0, 0.25, 0.5, 0.75)
    out = run_node(MODULE, "image.from_batch", image=batch, batch_index=batch_index, length=length)
    assert torch.equal(out, batch[taken])


def test_repeat_image_batch_repeats_the_whole_batch_in_order() -> None:
    out = run_node(MODULE, "image.repeat_batch", image=solid(0.1, 0.2), amount=3)
    assert torch.equal(out, solid(0.1, 0.2, 0.1, 0.2, 0.1, 0.2))


def test_repeating_past_the_largest_batch_is_refused_naming_amount() -> None:
    with pytest.raises(ValueError) as error:
        run_node(MODULE, "image.repeat_batch", image=solid(0.1, 0.2, 0.3), amount=22)
    assert str(error.value) == (
        "amount 22 repeats of 3 image(s) make a batch of 66 images; the most is 64"
    )


def test_composite_without_a_mask_pastes_at_x_y_and_cuts_at_the_edges() -> None:
    destination, source = solid(0.0, height=4, width=5), solid(1.0, height=2, width=3)
    out = composite(destination, source, x=1, y=1)
    expected = destination.clone()
    expected[:, 1:3, 1:4] = 1.0
    assert torch.equal(out, expected)
    edge = composite(destination, source, x=3, y=3)
    expected = destination.clone()
    expected[:, 3:, 3:] = 1.0  # 2 columns and 1 row of the source are inside
    assert torch.equal(edge, expected)
    assert torch.equal(composite(destination, source, x=5, y=0), destination)  # all outside


def test_an_all_zero_mask_keeps_the_destination_and_an_all_one_mask_pastes_the_source() -> None:
    torch.manual_seed(0)
    destination, source = torch.rand(2, 4, 4, 3), torch.rand(2, 4, 4, 3)
    assert torch.equal(composite(destination, source, mask=torch.zeros(1, 4, 4)), destination)
    assert torch.equal(composite(destination, source, mask=torch.ones(1, 4, 4)), source)
    half = composite(destination, source, mask=torch.full((1, 4, 4), 0.5))
    torch.testing.assert_close(half, (destination + source) / 2, rtol=0, atol=1e-7)


def test_the_mask_is_stretched_bilinearly_to_the_source_and_cycled_over_the_batch() -> None:
    destination = solid(0.0, 0.0, 0.0, height=2, width=4)
    source = solid(1.0, height=2, width=4)
    left_half = torch.tensor([[[1.0, 0.0]]])  # [1, 1, 2]: 2 wide, stretched to 4
    out = composite(destination, source, mask=left_half)
    # Bilinear without aligned corners from 2 to 4 columns: 1, 0.75, 0.25, 0.
    assert out.shape == (3, 2, 4, 3)
    assert out[2, 1, :, 0].tolist() == [1.0, 0.75, 0.25, 0.0]


def test_resize_source_stretches_it_to_the_destination_first() -> None:
    destination = solid(0.0, height=4, width=4)
    source = solid(0.6, height=1, width=2)
    out = composite(destination, source, x=2, y=2, resize_source=True)
    expected = destination.clone()
    expected[:, 2:, 2:] = 0.6  # a 4x4 source at (2, 2): its top-left quarter shows
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)


def test_compositing_never_writes_its_inputs() -> None:
    destination, source = solid(0.0, height=3, width=3), solid(1.0)
    mask = torch.ones(1, 2, 2)
    composite(destination, source, x=1, y=1, mask=mask)
    assert float(destination.sum()) == 0.0 and float(mask.sum()) == 4.0


def test_batch_sizes_are_estimated_and_an_oversized_repeat_refused_naming_amount(
    engine: Engine,
) -> None:
    steps: dict[str, dict[str, Any]] = {
        "two": {"type": "image.batch", "inputs": {"image1": "@load", "image2": "@load"}},
        "many": {"type": "image.repeat_batch", "inputs": {"image": "@two", "amount": 3}},
        "some": {
            "type": "image.from_batch",
            "inputs": {"image": "@many", "batch_index": 4, "length": 5},
        },
    }
    workflow = image_graph(steps, output="some")
    job = estimate(workflow, engine.registry, FolderFiles(engine.settings.folders))
    counts = {node: b.count for (node, _), b in job.estimates.items() if isinstance(b, Batch)}
    assert counts == {"load": 1, "two": 2, "many": 6, "some": 2}
    result = engine.run(workflow, targets=["some"])
    assert tuple(result.outputs["some"]["image"].shape) == (2, 256, 256, 3)

    steps["many"]["inputs"] = {"image": "@two", "amount": 33}
    [problem] = engine.validate(image_graph(steps, output="some"))
    assert (problem.node, problem.input, problem.code) == ("many", "amount", "over_limit")
    assert problem.message == (
        "node \"many\" (Repeat Image Batch) input 'amount': amount 33 repeats of 2 image(s) make "
        "a batch of 66 images; the most is 64"
    )
