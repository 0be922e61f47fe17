"""Latent Batch, Latent From Batch, Repeat Latent Batch, Latent Add/Subtract/Multiply: results,
noise masks and bounds (at validation when the batch size is known, else when they run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.models.family import SD15, SDXL
from latentloom.models.handles import Latent
from tests.node_calls import bare_engine as make_bare_engine
from tests.node_calls import node_runner


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Latent]:
    call = node_runner(tmp_path)
    return lambda node_type, **inputs: call(node_type, **inputs)["latent"]


@pytest.fixture(scope="module")
def bare_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return make_bare_engine(tmp_path_factory.mktemp("bare"))


def indexed(count: int, height: int = 2, width: int = 2) -> torch.Tensor:
    """A batch whose image i is filled with the value i: which image went where shows."""
    return (
        torch.arange(count, dtype=torch.float32)
        .reshape(count, 1, 1, 1)
        .expand(count, 4, height, width)
        .clone()
    )


def graph(nodes: dict[str, Any]) -> Workflow:
    return parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})


def empty(batch: int, side: int = 64) -> dict[str, Any]:
    return {"type": "latent.empty", "inputs": {"width": side, "height": side, "batch": batch}}


def link(node: str) -> dict[str, str]:
    return {"node": node, "output": "latent"}


def saved(node: str) -> dict[str, Any]:
    return {"type": "latent.save", "inputs": {"latent": link(node)}}


# Latent Batch


def test_batch_joins_equal_sizes_exactly_and_keeps_the_family(run: Callable[..., Latent]) -> None:
    out = run("latent.batch", samples1=Latent(indexed(2), SDXL), samples2=Latent(indexed(3) + 10))
    assert out.samples.shape == (5, 4, 2, 2)
    assert out.samples[:, 0, 0, 0].tolist() == [0.0, 1.0, 10.0, 11.0, 12.0]
    assert out.family is SDXL and out.noise_mask is None


def test_batch_fits_samples2_by_centre_crop_then_resize(run: Callable[..., Latent]) -> None:
    # samples2 is twice as wide: its middle half (columns 2..5) is what fits a square.
    wide = torch.full((1, 4, 4, 8), 7.0)
    wide[..., :2], wide[..., 6:] = 100.0, -100.0
    out = run("latent.batch", samples1=Latent(torch.zeros(1, 4, 8, 8)), samples2=Latent(wide))
    assert out.samples.shape == (2, 4, 8, 8)
    assert torch.equal(out.samples[1], torch.full((4, 8, 8), 7.0))


def test_batch_joins_noise_masks_image_by_image(run: Callable[..., Latent]) -> None:
    half = torch.zeros(1, 16, 16)
    half[:, :, :8] = 1.0
    first = Latent(torch.zeros(2, 4, 2, 2), SD15, half)  # one mask for both images
    out = run("latent.batch", samples1=first, samples2=Latent(torch.zeros(1, 4, 2, 2)))
    assert out.noise_mask is not None and out.noise_mask.shape == (3, 16, 16)
    assert torch.equal(out.noise_mask[0], half[0]) and torch.equal(out.noise_mask[1], half[0])
    assert torch.equal(out.noise_mask[2], torch.ones(16, 16))  # no mask: change everywhere


def test_batch_resizes_the_second_mask_to_the_first_and_fills_a_missing_first(
    run: Callable[..., Latent],
) -> None:
    second = Latent(torch.zeros(1, 4, 2, 2), SD15, torch.full((1, 4, 4), 0.25))
    out = run("latent.batch", samples1=Latent(torch.zeros(1, 4, 2, 2)), samples2=second)
    # No first mask: ones at the first latent's pixel size (2 cells x 8).
    assert out.noise_mask is not None and out.noise_mask.shape == (2, 16, 16)
    assert torch.equal(out.noise_mask[0], torch.ones(16, 16))
    assert torch.equal(out.noise_mask[1], torch.full((16, 16), 0.25))


def test_batch_refuses_mixed_channel_counts_naming_samples2(run: Callable[..., Latent]) -> None:
    with pytest.raises(ValueError) as caught:
        run(
            "latent.batch",
            samples1=Latent(torch.zeros(1, 4, 2, 2)),
            samples2=Latent(torch.zeros(1, 16, 2, 2)),
        )
    assert str(caught.value) == (
        "input 'samples2' has 16 latent channels, the other latent 4; they come from "
        "different model families"
    )


def test_batch_past_the_limit_is_refused_at_validation(bare_engine: Engine) -> None:
    workflow = graph(
        {
            "a": empty(40),
            "b": empty(30),
            "both": {
                "type": "latent.batch",
                "inputs": {"samples1": link("a"), "samples2": link("b")},
            },
            "save": saved("both"),
        }
    )
    [problem] = bare_engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("both", "samples2", "over_limit")
    assert problem.message == (
        "node \"both\" (Latent Batch) input 'samples2': joining the two batches makes a batch "
        "of 70; the most is 64"
    )


# Latent From Batch


def test_from_batch_takes_length_images_from_the_index(run: Callable[..., Latent]) -> None:
    out = run("latent.from_batch", samples=Latent(indexed(4), SD15), batch_index=1, length=2)
    assert out.samples[:, 0, 0, 0].tolist() == [1.0, 2.0] and out.family is SD15


def test_from_batch_length_past_the_end_takes_what_is_left(run: Callable[..., Latent]) -> None:
    out = run("latent.from_batch", samples=Latent(indexed(4)), batch_index=2, length=64)
    assert out.samples[:, 0, 0, 0].tolist() == [2.0, 3.0]


def test_from_batch_slices_per_image_masks_and_keeps_a_single_one(
    run: Callable[..., Latent],
) -> None:
    single = torch.full((1, 2, 2), 0.5)
    out = run(
        "latent.from_batch", samples=Latent(indexed(4), None, single), batch_index=3, length=1
    )
    assert out.noise_mask is single
    # Two masks for four images cycle (0, 1, 0, 1): images 1 and 2 have masks 1 and 0.
    two = torch.stack([torch.full((2, 2), 0.0), torch.full((2, 2), 1.0)])
    out = run("latent.from_batch", samples=Latent(indexed(4), None, two), batch_index=1, length=2)
    assert out.noise_mask is not None
    assert out.noise_mask[:, 0, 0].tolist() == [1.0, 0.0]


def test_from_batch_index_past_the_batch_is_refused(
    run: Callable[..., Latent], bare_engine: Engine
) -> None:
    with pytest.raises(ValueError) as caught:
        run("latent.from_batch", samples=Latent(indexed(4)), batch_index=4, length=1)
    assert str(caught.value) == "input 'batch_index': 4 is past the batch of 4 (indices 0 to 3)"
    workflow = graph(
        {
            "a": empty(2),
            "pick": {
                "type": "latent.from_batch",
                "inputs": {"samples": link("a"), "batch_index": 2},
            },
            "save": saved("pick"),
        }
    )
    [problem] = bare_engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("pick", "batch_index", "over_limit")
    assert problem.message == (
        "node \"pick\" (Latent From Batch) input 'batch_index': 2 is past the batch of 2 "
        "(indices 0 to 1)"
    )


# Repeat Latent Batch


def test_repeat_repeats_the_whole_batch_in_order(run: Callable[..., Latent]) -> None:
    out = run("latent.repeat_batch", samples=Latent(indexed(2), SDXL), amount=3)
    assert out.samples[:, 0, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert out.family is SDXL


def test_repeat_repeats_per_image_masks_and_keeps_a_single_one(run: Callable[..., Latent]) -> None:
    single = torch.ones(1, 2, 2)
    assert (
        run("latent.repeat_batch", samples=Latent(indexed(2), None, single), amount=2).noise_mask
        is single
    )
    two = torch.stack([torch.zeros(2, 2), torch.ones(2, 2)])
    out = run("latent.repeat_batch", samples=Latent(indexed(2), None, two), amount=2)
    assert out.noise_mask is not None
    assert out.noise_mask[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_repeat_past_the_limit_is_refused_when_run_and_at_validation(
    run: Callable[..., Latent], bare_engine: Engine
) -> None:
    with pytest.raises(ValueError) as caught:
        run("latent.repeat_batch", samples=Latent(indexed(33)), amount=2)
    assert str(caught.value) == "input 'amount': 33 x 2 makes a batch of 66; the most is 64"
    workflow = graph(
        {
            "a": empty(2),
            "more": {"type": "latent.repeat_batch", "inputs": {"samples": link("a"), "amount": 33}},
            "save": saved("more"),
        }
    )
    [problem] = bare_engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("more", "amount", "over_limit")
    assert problem.message == (
        "node \"more\" (Repeat Latent Batch) input 'amount': 2 x 33 makes a batch of 66; the "
        "most is 64"
    )
    workflow.nodes["more"].inputs["amount"] = 32
    assert bare_engine.validate(workflow) == []


# Add, Subtract, Multiply


def test_add_and_subtract_elementwise_keeping_samples1s_mask_and_family(
    run: Callable[..., Latent],
) -> None:
    mask = torch.zeros(1, 2, 2)
    first = Latent(indexed(2) + 1, SD15, mask)
    second = Latent(torch.full((2, 4, 2, 2), 0.5))
    added = run("latent.add", samples1=first, samples2=second)
    assert added.samples[:, 0, 0, 0].tolist() == [1.5, 2.5]
    assert added.noise_mask is mask and added.family is SD15
    assert run("latent.subtract", samples1=first, samples2=second).samples[:, 0, 0, 0].tolist() == [
        0.5,
        1.5,
    ]
    assert torch.equal(
        run("latent.subtract", samples1=first, samples2=first).samples, torch.zeros(2, 4, 2, 2)
    )


def test_add_cycles_samples2s_batch_and_fits_its_size(run: Callable[..., Latent]) -> None:
    # One 4x4 image of 3s added to each of three 2x2 images: resized, then cycled.
    out = run(
        "latent.add", samples1=Latent(indexed(3)), samples2=Latent(torch.full((1, 4, 4, 4), 3.0))
    )
    assert out.samples.shape == (3, 4, 2, 2)
    assert out.samples[:, 0, 0, 0].tolist() == [3.0, 4.0, 5.0]
    # A bigger batch in samples2 is cut to samples1's.
    out = run("latent.add", samples1=Latent(indexed(1)), samples2=Latent(indexed(3) + 1))
    assert out.samples[:, 0, 0, 0].tolist() == [1.0]


@pytest.mark.parametrize(
    ("multiplier", "expected"),
    [(1.0, [0.0, 1.0, 2.0]), (0.0, [0.0, 0.0, 0.0]), (-2.5, [0.0, -2.5, -5.0])],
)
def test_multiply_scales_every_value(
    run: Callable[..., Latent], multiplier: float, expected: list[float]
) -> None:
    mask = torch.ones(1, 2, 2)
    out = run("latent.multiply", samples=Latent(indexed(3), SDXL, mask), multiplier=multiplier)
    assert out.samples[:, :, 1, 1].tolist() == [[value] * 4 for value in expected]
    assert out.noise_mask is mask and out.family is SDXL


def test_multiply_by_one_is_the_identity(run: Callable[..., Latent]) -> None:
    samples = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        run("latent.multiply", samples=Latent(samples), multiplier=1.0).samples, samples
    )
