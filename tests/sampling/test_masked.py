"""Noise masks: every sampler changes only the masked region, as ComfyUI's inpainting does."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from latentloom.models.handles import DiffusionModel
from latentloom.sampling.denoiser import GuidedDenoiser
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.masked import MaskedDenoiser, blend, prepare_mask
from latentloom.sampling.run import sample
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.samplers_euler import sample_euler
from latentloom.sampling.schedules import sigmas_karras
from latentloom.sampling.start import initial_noise
from tests.sampling.tiny_models import LATENT_SHAPE, conditioning, tiny_model

STEPS, SEED = 3, 5
SOURCE = torch.randn(LATENT_SHAPE, generator=torch.Generator().manual_seed(99))


def right_half_mask(size: int = 16) -> Tensor:
    """A [1, size, size] mask: change the right half, keep the left (resized to the latent)."""
    mask = torch.zeros(1, size, size)
    mask[..., size // 2 :] = 1.0
    return mask


@pytest.fixture(scope="module")
def model() -> DiffusionModel:
    return tiny_model()


def run(model: DiffusionModel, sampler: str, mask: Tensor | None, **kw: Any) -> Tensor:
    options: dict[str, Any] = {"steps": STEPS, "cfg": 5.0, "scheduler": "karras"} | kw
    return sample(
        model,
        conditioning(1),
        conditioning(2),
        SOURCE,
        seed=SEED,
        sampler=sampler,
        noise_mask=mask,
        **options,
    )


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_unmasked_latents_equal_the_source_bit_for_bit(model: DiffusionModel, sampler: str) -> None:
    result = run(model, sampler, right_half_mask())
    # The 16x16 mask halves to exactly the latent's columns 4..7 (bilinear at the half step).
    assert torch.equal(result[..., :4], SOURCE[..., :4])
    assert not torch.allclose(result[..., 4:], SOURCE[..., 4:], atol=1e-3)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_an_all_zero_mask_returns_the_source(model: DiffusionModel, sampler: str) -> None:
    assert torch.equal(run(model, sampler, torch.zeros(1, 8, 8)), SOURCE)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_an_all_one_mask_is_plain_img2img_bit_for_bit(model: DiffusionModel, sampler: str) -> None:
    plain = run(model, sampler, None, denoise=0.7)
    assert torch.equal(run(model, sampler, torch.ones(1, 32, 32), denoise=0.7), plain)


def test_the_kept_region_is_renoised_with_the_start_noise_at_each_sigma(
    model: DiffusionModel,
) -> None:
    # ComfyUI's KSamplerX0Inpaint, built by hand around our Euler: the kept region of x is
    # source + start noise * sigma before every model call, the x0 prediction's is the source.
    mask = prepare_mask(right_half_mask(), LATENT_SHAPE)
    sigmas = sigmas_karras(DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), STEPS)
    noise = initial_noise(SEED, LATENT_SHAPE)
    inner = GuidedDenoiser(model, conditioning(1), conditioning(2), 5.0)
    x = noise * torch.sqrt(1.0 + sigmas[0] ** 2.0) + SOURCE
    expected = sample_euler(MaskedDenoiser(inner, SOURCE, noise, mask), x, sigmas)
    assert torch.equal(run(model, "euler", right_half_mask()), blend(expected, SOURCE, mask))


def test_ddim_renoises_the_kept_region_with_noise_from_seed_plus_one(
    model: DiffusionModel,
) -> None:
    # ComfyUI runs "ddim" as Euler with its own inpainting noise: the same without a mask.
    assert torch.equal(run(model, "ddim", None), run(model, "euler", None))
    mask = prepare_mask(right_half_mask(), LATENT_SHAPE)
    sigmas = sigmas_karras(DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod), STEPS)
    inner = GuidedDenoiser(model, conditioning(1), conditioning(2), 5.0)
    x = initial_noise(SEED, LATENT_SHAPE) * torch.sqrt(1.0 + sigmas[0] ** 2.0) + SOURCE
    own_noise = initial_noise(SEED + 1, LATENT_SHAPE)
    expected = sample_euler(MaskedDenoiser(inner, SOURCE, own_noise, mask), x, sigmas)
    assert torch.equal(run(model, "ddim", right_half_mask()), blend(expected, SOURCE, mask))
    assert not torch.equal(
        run(model, "ddim", right_half_mask()), run(model, "euler", right_half_mask())
    )


def test_masked_denoiser_feeds_the_renoised_source_and_returns_the_source_where_kept() -> None:
    seen: list[Tensor] = []

    def halve(x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        seen.append(x)
        return x * 0.5

    mask = torch.tensor([[[[1.0, 0.0]]]])
    source, noise = torch.tensor([[[[3.0, 3.0]]]]), torch.tensor([[[[1.0, -2.0]]]])
    x = torch.tensor([[[[10.0, 10.0]]]])
    out = MaskedDenoiser(halve, source, noise, mask)(x, torch.tensor(2.0))
    assert seen[0].tolist() == [[[[10.0, 3.0 - 2.0 * 2.0]]]]
    assert out.tolist() == [[[[5.0, 3.0]]]]


def test_a_mask_is_resized_bilinearly_and_broadcast_over_channels_and_batch() -> None:
    mask = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    prepared = prepare_mask(mask, (2, 4, 4, 4))
    assert prepared.shape == (2, 4, 4, 4)
    # align_corners=False: the outer quarter takes the edge value, the inner ones blend.
    expected_row = torch.tensor([0.0, 0.25, 0.75, 1.0])
    assert torch.equal(prepared, expected_row.expand(2, 4, 4, 4))


def test_a_mask_batch_is_repeated_or_cut_to_the_latent_batch() -> None:
    masks = torch.stack([torch.full((2, 2), float(i)) for i in range(3)])
    assert prepare_mask(masks[:2], (3, 4, 2, 2))[:, 0, 0, 0].tolist() == [0.0, 1.0, 0.0]
    assert prepare_mask(masks, (2, 4, 2, 2))[:, 0, 0, 0].tolist() == [0.0, 1.0]


def test_a_mask_of_the_wrong_rank_is_refused_with_the_shape() -> None:
    with pytest.raises(ValueError) as caught:
        prepare_mask(torch.ones(1, 1, 1, 8, 8), LATENT_SHAPE)
    assert str(caught.value) == (
        "a noise mask is [H, W] or [B, H, W], got shape (1, 1, 1, 8, 8); "
        "use Set Latent Noise Mask with a MASK"
    )
