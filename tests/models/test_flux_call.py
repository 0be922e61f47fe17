"""`FluxCall`: packing, position ids and guidance as FluxPipeline prepares them, checked against
the tiny transformer's own forward on the same packed inputs."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from latentloom.models.flux_call import DEFAULT_FLUX_GUIDANCE, FluxCall, image_ids, pack, unpack
from latentloom.models.flux_tiny import tiny_flux_transformer


def tiny(variant: Any) -> Any:
    return tiny_flux_transformer(variant, context_width=32, pooled_width=32)


def _inputs(n: int, h: int, w: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(n, 16, h, w, generator=generator)
    context = torch.randn(n, 7, 32, generator=generator)
    pooled = torch.randn(n, 32, generator=generator)
    return x, context, pooled


def test_pack_matches_diffusers_and_unpack_inverts_it() -> None:
    from diffusers import FluxPipeline

    x = torch.arange(2 * 16 * 4 * 6, dtype=torch.float32).reshape(2, 16, 4, 6)
    assert torch.equal(pack(x), FluxPipeline._pack_latents(x, 2, 16, 4, 6))
    assert torch.equal(unpack(pack(x), 4, 6), x)
    ids = image_ids(4, 6, torch.device("cpu"), torch.float32)
    # vae_scale_factor 8: diffusers' height/width are pixels of the [h, w] latent.
    assert torch.equal(ids, FluxPipeline._prepare_latent_image_ids(2, 2, 3, "cpu", torch.float32))
    assert ids[4].tolist() == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("variant", ["dev", "schnell"])
def test_call_equals_the_transformer_forward(variant: str) -> None:
    transformer = tiny(variant)
    x, context, pooled = _inputs(2, 6, 4)
    sigma = torch.tensor(0.75)
    guidance = torch.tensor([2.0, 5.0]) if variant == "dev" else None
    with torch.no_grad():
        ours = FluxCall(transformer)(
            x, sigma, context, pooled, {} if guidance is None else {"guidance": guidance}
        )
        theirs = transformer(
            hidden_states=pack(x),
            encoder_hidden_states=context,
            pooled_projections=pooled,
            timestep=sigma.expand(2),
            img_ids=image_ids(6, 4, x.device, x.dtype),
            txt_ids=torch.zeros(7, 3),
            guidance=guidance,
            return_dict=False,
        )[0]
    assert ours.shape == (2, 16, 6, 4)
    assert torch.equal(ours, unpack(theirs, 6, 4))


def test_dev_without_guidance_gets_the_default_and_schnell_ignores_it() -> None:
    x, context, pooled = _inputs(1, 4, 4)
    sigma = torch.tensor(0.5)
    dev = FluxCall(tiny("dev"))
    with torch.no_grad():
        default = dev(x, sigma, context, pooled, {})
        explicit = dev(
            x, sigma, context, pooled, {"guidance": torch.tensor([DEFAULT_FLUX_GUIDANCE])}
        )
        other = dev(x, sigma, context, pooled, {"guidance": torch.tensor([1.0])})
        schnell = FluxCall(tiny("schnell"))
        a = schnell(x, sigma, context, pooled, {})
        b = schnell(x, sigma, context, pooled, {"guidance": torch.tensor([9.0])})
    assert DEFAULT_FLUX_GUIDANCE == 3.5
    assert torch.equal(default, explicit)
    assert not torch.allclose(default, other)
    assert torch.equal(a, b)


def test_odd_regions_are_padded_circularly_and_cropped_back() -> None:
    transformer = tiny("schnell")
    x, context, pooled = _inputs(1, 5, 3)
    sigma = torch.tensor(0.5)
    with torch.no_grad():
        ours = FluxCall(transformer)(x, sigma, context, pooled, {})
        padded = torch.nn.functional.pad(x, (0, 1, 0, 1), mode="circular")
        full = FluxCall(transformer)(padded, sigma, context, pooled, {})
    assert ours.shape == (1, 16, 5, 3)
    assert torch.equal(ours, full[:, :, :5, :3])


def test_missing_pooled_output_says_which_loader_gives_it() -> None:
    x, context, _ = _inputs(1, 2, 2)
    with pytest.raises(ValueError, match="Dual CLIP Loader type flux"):
        FluxCall(tiny("schnell"))(x, torch.tensor(1.0), context, None, {})
