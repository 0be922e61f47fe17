"""VAE Decode scales by the latent's family: a standalone VAE file cannot always say its own."""

from __future__ import annotations

import dataclasses

import torch

from latentloom.models.family import SD15, SDXL
from latentloom.models.load import load_checkpoint
from latentloom.vae import decode
from tests.models.conftest import TinyFile


def test_the_latents_family_sets_the_scale(tiny_file: TinyFile) -> None:
    vae = load_checkpoint(tiny_file("sd15"), device="cpu", dtype=torch.float32).vae
    as_sdxl = dataclasses.replace(vae, family=SDXL)  # the same weights, told they are SDXL's
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert SD15.vae_scaling_factor != SDXL.vae_scaling_factor
    # An SDXL latent through a VAE file taken for SD 1.x decodes as through an SDXL VAE...
    assert torch.equal(decode(vae, latent, family=SDXL), decode(as_sdxl, latent))
    # ...and a latent of unknown family falls back on the VAE's own.
    assert torch.equal(decode(vae, latent), decode(vae, latent, family=SD15))
    assert not torch.equal(decode(vae, latent), decode(as_sdxl, latent))
