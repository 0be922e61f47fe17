"""Latent helpers: seeded noise, lerp/slerp, noise mixing."""

from __future__ import annotations

import pytest
import torch

from latentloom.latent_math import add_noise, interpolate, seeded_noise, slerp


def test_seeded_noise_is_reproducible_and_seed_dependent() -> None:
    assert torch.equal(seeded_noise(5, (1, 4, 8, 8)), seeded_noise(5, (1, 4, 8, 8)))
    assert not torch.equal(seeded_noise(5, (1, 4, 8, 8)), seeded_noise(6, (1, 4, 8, 8)))


@pytest.mark.parametrize("mode", ["lerp", "slerp"])
def test_interpolation_hits_both_ends(mode: str) -> None:
    a, b = seeded_noise(1, (2, 4, 8, 8)), seeded_noise(2, (2, 4, 8, 8))
    assert torch.allclose(interpolate(a, b, 0.0, mode), a, atol=1e-6)
    assert torch.allclose(interpolate(a, b, 1.0, mode), b, atol=1e-6)


def test_slerp_keeps_the_norm_of_gaussian_latents_where_lerp_shrinks_it() -> None:
    a, b = seeded_noise(1, (1, 4, 64, 64)), seeded_noise(2, (1, 4, 64, 64))
    middle_slerp, middle_lerp = slerp(a, b, 0.5), interpolate(a, b, 0.5, "lerp")
    assert middle_slerp.norm() == pytest.approx(a.norm().item(), rel=0.02)
    assert middle_lerp.norm() == pytest.approx(a.norm().item() / 2**0.5, rel=0.02)


def test_slerp_of_parallel_latents_falls_back_to_lerp() -> None:
    a = seeded_noise(1, (1, 4, 8, 8))
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a, atol=1e-5)


def test_noise_modes() -> None:
    latent, noise = seeded_noise(1, (1, 4, 32, 32)), seeded_noise(2, (1, 4, 32, 32))
    assert torch.equal(add_noise(latent, noise, "sigma", 0.0), latent)
    assert torch.allclose(add_noise(latent, noise, "sigma", 2.0), latent + 2 * noise)
    mixed = add_noise(latent, noise, "strength", 0.6)
    assert mixed.std().item() == pytest.approx(1.0, abs=0.05)  # variance preserved
    assert torch.allclose(add_noise(latent, noise, "strength", 1.0), noise)
    with pytest.raises(ValueError, match=r"strength must be within \[0, 1\], got 1.5"):
        add_noise(latent, noise, "strength", 1.5)
