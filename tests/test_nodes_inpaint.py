"""Inpainting and outpainting nodes with the tiny SD 1.5 checkpoints: VAE Encode (for Inpaint)
greys the masked pixels and grows the mask as ComfyUI does; Set Latent Noise Mask's all-zero
mask returns the source exactly and its all-one mask is plain img2img; Pad Image for Outpaint's
sizes, grey and feathered mask; an inpainting checkpoint samples with its mask and masked-image
channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.api import (
    Batch,
    Checkpoint,
    CostQuery,
    Latent,
    encode_prompt,
    inpaint_pixels,
    load_checkpoint,
    vae_encode,
)
from latentloom.models.tiny import make_tiny_checkpoint
from tests.support import node_context, pack_module

INPAINT = pack_module("inpaint")
SAMPLING = pack_module("sampling")
SIDE = 64  # pixels: an 8 x 8 latent


@pytest.fixture(scope="module")
def checkpoint(models_dir: Path) -> Checkpoint:
    path = models_dir / "checkpoints" / "tiny-sd15.safetensors"
    return load_checkpoint(path, device=torch.device("cpu"), dtype=torch.float32)


@pytest.fixture(scope="module")
def inpainting_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    path = tmp_path_factory.mktemp("inpaint") / "tiny-sd15-inpaint.safetensors"
    make_tiny_checkpoint("sd15", path, seed=0, inpaint=True)
    return load_checkpoint(path, device=torch.device("cpu"), dtype=torch.float32)


def picture(height: int = SIDE, width: int = SIDE) -> torch.Tensor:
    return torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(3))


def ksampler(checkpoint: Checkpoint, latent: Latent, denoise: float = 1.0) -> torch.Tensor:
    outputs = SAMPLING.ksampler(
        node_context(),
        checkpoint.model,
        encode_prompt(checkpoint.clip, "a red door"),
        encode_prompt(checkpoint.clip, "blurry"),
        latent,
        seed=11,
        steps=3,
        cfg=7.0,
        sampler="euler",
        scheduler="normal",
        denoise=denoise,
    )
    samples: torch.Tensor = outputs["latent"].samples
    return samples


def encode_for_inpaint(
    checkpoint: Checkpoint, image: torch.Tensor, mask: torch.Tensor, grow: int
) -> Latent:
    outputs = INPAINT.vae_encode_for_inpaint(node_context(), checkpoint.vae, image, mask, grow)
    latent: Latent = outputs["latent"]
    return latent


# --- VAE Encode (for Inpaint) ----------------------------------------------------------------


def test_masked_pixels_are_grey_and_the_rest_kept() -> None:
    image = picture(8, 8)
    mask = torch.zeros(1, 8, 8)
    mask[0, 2, 3] = 0.6  # rounds to 1: greyed
    mask[0, 5, 5] = 0.4  # rounds to 0: kept
    pixels, resized = inpaint_pixels(image, mask, 8)
    assert torch.equal(pixels[0, 2, 3], torch.full((3,), 0.5))
    assert torch.equal(resized, mask)
    kept = torch.ones(8, 8, dtype=torch.bool)
    kept[2, 3] = False
    assert torch.allclose(pixels[0][kept], image[0][kept], atol=1e-7, rtol=0)


def test_the_image_is_cut_centred_to_a_multiple_of_8() -> None:
    image = picture(21, 19)
    pixels, resized = inpaint_pixels(image, torch.zeros(1, 21, 19), 8)
    assert pixels.shape == (1, 16, 16, 3) and resized.shape == (1, 16, 16)
    # Offsets (21 % 8) // 2 = 2 rows and (19 % 8) // 2 = 1 column, as ComfyUI cuts.
    assert torch.allclose(pixels[0, 0, 0], image[0, 2, 1], atol=1e-7, rtol=0)


def test_the_mask_grows_by_a_box_reaching_further_right_and_down_for_even_sizes(
    checkpoint: Checkpoint,
) -> None:
    mask = torch.zeros(1, 16, 16)
    mask[0, 8, 8] = 1.0
    latent = encode_for_inpaint(checkpoint, picture(16, 16), mask, 6)
    assert latent.noise_mask is not None and latent.noise_mask.shape == (1, 16, 16)
    rows, columns = torch.nonzero(latent.noise_mask[0], as_tuple=True)
    # A 6-pixel box with padding 3: two pixels up and left, three down and right.
    assert (rows.min().item(), rows.max().item()) == (6, 11)
    assert (columns.min().item(), columns.max().item()) == (6, 11)
    assert latent.noise_mask.sum().item() == 36
    three = encode_for_inpaint(checkpoint, picture(16, 16), mask, 3)
    assert three.noise_mask is not None and three.noise_mask.sum().item() == 9  # 7..9 each way
    assert three.noise_mask[0, 7:10, 7:10].sum().item() == 9


def test_encode_for_inpaint_encodes_the_greyed_pixels_with_the_vae(checkpoint: Checkpoint) -> None:
    image = picture()
    mask = torch.zeros(1, SIDE // 2, SIDE // 2)  # half resolution: resized bilinearly
    mask[0, :8, :8] = 1.0
    latent = encode_for_inpaint(checkpoint, image, mask, 0)
    pixels, resized = inpaint_pixels(image, mask, 8)
    assert torch.equal(latent.samples, vae_encode(checkpoint.vae, pixels))
    assert latent.family is checkpoint.vae.family
    assert latent.noise_mask is not None
    assert torch.equal(latent.noise_mask, resized.round())
    assert latent.noise_mask[0, :15, :15].min().item() == 1.0
    assert latent.noise_mask[0, 17:, :].max().item() == 0.0


def test_one_mask_per_image_or_one_for_all() -> None:
    with pytest.raises(ValueError, match="the mask holds 2 masks for 3 images"):
        inpaint_pixels(torch.zeros(3, 8, 8, 3), torch.zeros(2, 8, 8), 8)


# --- Set Latent Noise Mask and sampling under a mask -------------------------------------------


def source_latent(checkpoint: Checkpoint) -> Latent:
    return Latent(vae_encode(checkpoint.vae, picture()), checkpoint.vae.family)


def with_mask(latent: Latent, mask: torch.Tensor) -> Latent:
    masked: Latent = INPAINT.set_latent_noise_mask(node_context(), latent, mask)["latent"]
    return masked


def test_set_latent_noise_mask_returns_a_new_latent(checkpoint: Checkpoint) -> None:
    source = source_latent(checkpoint)
    mask = torch.ones(SIDE, SIDE)  # [H, W] is taken as one mask
    masked = with_mask(source, mask)
    assert source.noise_mask is None and masked.samples is source.samples
    assert masked.noise_mask is not None and masked.noise_mask.shape == (1, SIDE, SIDE)
    with pytest.raises(ValueError, match="mask holds 2 masks for a batch of 1 latents"):
        with_mask(source, torch.ones(2, SIDE, SIDE))


def test_an_all_zero_mask_returns_the_source_exactly(checkpoint: Checkpoint) -> None:
    source = source_latent(checkpoint)
    for denoise in (1.0, 0.5):
        sampled = ksampler(checkpoint, with_mask(source, torch.zeros(1, SIDE, SIDE)), denoise)
        assert torch.equal(sampled, source.samples)


def test_an_all_one_mask_is_plain_img2img(checkpoint: Checkpoint) -> None:
    source = source_latent(checkpoint)
    plain = ksampler(checkpoint, source, 0.6)
    masked = ksampler(checkpoint, with_mask(source, torch.ones(1, SIDE, SIDE)), 0.6)
    assert torch.equal(masked, plain)
    assert not torch.equal(plain, source.samples)


def test_a_partial_mask_changes_only_its_region(checkpoint: Checkpoint) -> None:
    source = source_latent(checkpoint)
    mask = torch.zeros(1, SIDE, SIDE)
    mask[:, :, : SIDE // 2] = 1.0  # the left half: latent columns 0-3 exactly
    sampled = ksampler(checkpoint, with_mask(source, mask))
    assert torch.equal(sampled[..., 4:], source.samples[..., 4:])
    assert (sampled[..., :3] - source.samples[..., :3]).abs().min() > 0


# --- inpainting checkpoints --------------------------------------------------------------------


def test_an_inpainting_checkpoint_samples_with_its_mask_and_masked_image(
    inpainting_checkpoint: Checkpoint,
) -> None:
    mask = torch.zeros(1, SIDE, SIDE)
    mask[:, 16:48, 16:48] = 1.0
    latent = encode_for_inpaint(inpainting_checkpoint, picture(), mask, 0)
    seen: list[torch.Tensor] = []
    unet: Any = inpainting_checkpoint.model.unet
    hook = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        sampled = ksampler(inpainting_checkpoint, latent)
    finally:
        hook.remove()
    assert len(seen) == 3 and all(inputs.shape == (2, 9, 8, 8) for inputs in seen)
    expected_mask = torch.zeros(8, 8)
    expected_mask[2:6, 2:6] = 1.0
    for inputs in seen:
        assert torch.equal(inputs[:, 4], expected_mask.expand(2, 8, 8))
        assert torch.equal(inputs[:, 5:], latent.samples.expand(2, -1, -1, -1))
    outside = expected_mask == 0
    assert torch.equal(sampled[0][:, outside], latent.samples[0][:, outside])
    assert bool(sampled.isfinite().all())


# --- Pad Image for Outpaint --------------------------------------------------------------------


def comfy_feather(
    height: int, width: int, sides: tuple[int, int, int, int], feathering: int
) -> torch.Tensor:
    """ComfyUI's rule for the mask over the old image, pixel by pixel, as its docs state it:
    d = distance to the nearest padded side (row i from the top, height - i from the bottom,
    column j from the left, width - j from the right); ((f - d) / f)^2 where d < f."""
    left, top, right, bottom = sides
    expected = torch.zeros(height, width)
    for i in range(height):
        for j in range(width):
            d = min(
                i if top else height,
                height - i if bottom else height,
                j if left else width,
                width - j if right else width,
            )
            if d < feathering:
                expected[i, j] = ((feathering - d) / feathering) ** 2
    return expected


def test_pad_for_outpaint_sizes_grey_and_mask() -> None:
    image = picture(12, 10)
    out = INPAINT.pad_image_for_outpaint(node_context(), image, 8, 0, 16, 8, 0)
    padded, mask = out["image"], out["mask"]
    assert padded.shape == (1, 20, 34, 3) and mask.shape == (1, 20, 34)
    assert torch.equal(padded[:, 0:12, 8:18], image)
    grey = torch.ones(20, 34, dtype=torch.bool)
    grey[0:12, 8:18] = False
    assert bool((padded[0][grey] == 0.5).all())
    assert torch.equal(mask[0], grey.float())  # no feathering: 0 over the image, 1 elsewhere


def test_pad_for_outpaint_feathers_quadratically_into_the_image() -> None:
    image = picture(12, 10)
    out = INPAINT.pad_image_for_outpaint(node_context(), image, 8, 0, 0, 8, 4)
    inner = out["mask"][0, 0:12, 8:18]
    assert torch.equal(inner, comfy_feather(12, 10, (8, 0, 0, 8), 4))
    assert inner[5, 0].item() == 1.0  # on the padded left edge: d = 0
    assert inner[5, 1].item() == pytest.approx(0.5625)  # d = 1: (3/4)^2
    assert inner[0, 5].item() == 0.0  # top not padded: no fade there
    assert inner[11, 5].item() == pytest.approx(0.5625)  # bottom counts from height - i = 1


def test_no_feather_when_twice_it_does_not_fit() -> None:
    out = INPAINT.pad_image_for_outpaint(node_context(), picture(12, 10), 8, 8, 8, 8, 5)
    assert out["mask"][0, 8:20, 8:18].max().item() == 0.0


def test_pad_for_outpaint_cost_is_the_padded_image_and_refuses_past_max_side() -> None:
    def query(**sides: int) -> CostQuery:
        literals = {"left": 0, "top": 0, "right": 0, "bottom": 0, "feathering": 40, **sides}
        upstream = {"image": Batch(192, 256, 2, "load")}
        return CostQuery("pad", literals, upstream, files=None)  # type: ignore[arg-type]

    cost = INPAINT.pad_image_for_outpaint_cost(query(left=32, right=32))
    assert cost.outputs["image"] == Batch(256, 256, 2, "pad")
    assert INPAINT.pad_image_for_outpaint_cost(query(right=8000)).refusals == ()  # 8192 wide
    refused = INPAINT.pad_image_for_outpaint_cost(query(right=8008))
    assert [r.input for r in refused.refusals] == ["image"]
    assert refused.refusals[0].message == (
        "the padded image would be 8200x256; the most is 8192 per side: pad less or scale the "
        "image down first"
    )
