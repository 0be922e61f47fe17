"""Inpainting UNets (9 input channels) get [mask, masked-image latent] after the latent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.api import encode_prompt
from latentloom.models.handles import DiffusionModel
from latentloom.models.load import load_checkpoint
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.sampling.masked import BLANK_INPAINT_LATENT
from latentloom.sampling.run import sample
from tests.sampling.tiny_models import LATENT_SHAPE, conditioning, tiny_model

SOURCE = torch.randn(LATENT_SHAPE, generator=torch.Generator().manual_seed(7))


def unet_inputs(model: DiffusionModel, mask: Tensor | None) -> tuple[Tensor, list[Tensor]]:
    """The sampled latent and the `sample` tensor of every UNet call of a 2-step euler run."""
    seen: list[Tensor] = []
    unet: Any = model.unet
    handle = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        result = sample(
            model,
            conditioning(1),
            conditioning(2),
            SOURCE,
            seed=3,
            steps=2,
            cfg=5.0,
            sampler="euler",
            scheduler="karras",
            noise_mask=mask,
        )
    finally:
        handle.remove()
    return result, seen


@pytest.fixture(scope="module")
def inpainting_model() -> DiffusionModel:
    return tiny_model(in_channels=9)


def test_the_mask_rounded_and_the_source_follow_the_latent(
    inpainting_model: DiffusionModel,
) -> None:
    mask = torch.full((1, 8, 8), 0.3)
    mask[..., 4:] = 0.7  # rounds to 1: the right half is painted
    result, calls = unet_inputs(inpainting_model, mask)
    assert len(calls) == 2
    for x_in in calls:
        assert x_in.shape == (2, 9, 8, 8)  # [uncond, cond] x (4 latent + 1 mask + 4 image)
        expected_mask = torch.zeros(2, 1, 8, 8)
        expected_mask[..., 4:] = 1.0
        assert torch.equal(x_in[:, 4:5], expected_mask)
        assert torch.equal(x_in[:, 5:], SOURCE.expand(2, -1, -1, -1))
    # Only the UNet's copy is rounded: the blend keeps 0.3 of the change in the left half.
    assert not torch.equal(result[..., :4], SOURCE[..., :4])


def test_without_a_mask_everything_is_painted_over_a_grey_picture(
    inpainting_model: DiffusionModel,
) -> None:
    _, calls = unet_inputs(inpainting_model, None)
    grey = torch.tensor(BLANK_INPAINT_LATENT).view(1, 4, 1, 1).expand(2, 4, 8, 8)
    for x_in in calls:
        assert torch.equal(x_in[:, 4:5], torch.ones(2, 1, 8, 8))
        assert torch.equal(x_in[:, 5:], grey)


def test_a_plain_unet_gets_the_latent_alone() -> None:
    _, calls = unet_inputs(tiny_model(), torch.ones(1, 8, 8))
    assert [tuple(x_in.shape) for x_in in calls] == [(2, 4, 8, 8)] * 2


def test_other_extra_channel_counts_are_refused_naming_the_counts() -> None:
    with pytest.raises(ValueError) as caught:
        unet_inputs(tiny_model(in_channels=6), None)
    assert str(caught.value) == (
        "tiny-test-unet: the UNet takes 6 input channels for a 4-channel latent; only "
        "inpainting models' 9 (latent, mask, masked image) are supported"
    )


def test_a_tiny_inpainting_checkpoint_samples_under_a_mask(tmp_path: Path) -> None:
    # The real path: a 9-channel single-file checkpoint, loaded, prompted and sampled.
    path = make_tiny_checkpoint("sd15", tmp_path / "tiny-inpaint.safetensors", inpaint=True)
    checkpoint = load_checkpoint(path, device=None, dtype=None)
    prompt = encode_prompt(checkpoint.clip, "a red door")
    source = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 64, 64)
    mask[:, 32:] = 1.0  # the bottom half of the picture
    seen: list[int] = []
    unet: Any = checkpoint.model.unet
    handle = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        result = sample(
            checkpoint.model,
            prompt,
            prompt,
            source,
            seed=2,
            steps=2,
            cfg=3.0,
            sampler="euler",
            scheduler="normal",
            noise_mask=mask,
        )
    finally:
        handle.remove()
    assert seen == [9, 9]
    assert torch.equal(result[..., :4, :], source[..., :4, :])
    assert not torch.allclose(result[..., 4:, :], source[..., 4:, :], atol=1e-3)
