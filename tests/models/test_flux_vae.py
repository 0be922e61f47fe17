"""Load VAE on FLUX.1's AE (`ae.safetensors`: LDM names, 16 channels, no quant convs).

The file loads into exactly the weights of the module it was written from; "auto" takes it as
FLUX's (scale 0.3611, shift 0.1159) and says why, "sd3" as SD 3's; encode and decode apply
(z - shift) * scale and z / scale + shift around diffusers' own AutoencoderKL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FLUX, SD3
from latentloom.models.flux_tiny import make_tiny_flux_ae, tiny_flux_ae
from latentloom.models.vae_file import ASSUMED_16, load_vae
from latentloom.vae import decode, encode

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ae_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flux-ae") / "ae.safetensors"
    return make_tiny_flux_ae(
        path, scaling_factor=FLUX.vae_scaling_factor, shift_factor=FLUX.vae_shift_factor, seed=3
    )


def test_auto_loads_the_ae_as_flux(ae_file: Path) -> None:
    loaded = load_vae(ae_file, device=CPU, dtype=torch.float32)
    assert loaded.vae.family is FLUX
    assert loaded.family_rule == ASSUMED_16
    module: Any = loaded.vae.module
    assert module.config.latent_channels == 16
    assert module.quant_conv is None and module.post_quant_conv is None
    made: Any = tiny_flux_ae(FLUX.vae_scaling_factor, FLUX.vae_shift_factor, seed=3)
    reference = made.state_dict()
    ours = module.state_dict()
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[key], reference[key].float()) for key in reference)


def test_encode_and_decode_apply_flux_scale_and_shift(ae_file: Path) -> None:
    vae = load_vae(ae_file, device=CPU, dtype=torch.float32).vae
    module: Any = vae.module
    images = torch.rand(1, 32, 24, 3, generator=torch.Generator().manual_seed(0))
    latents = encode(vae, images)
    pixels = images.permute(0, 3, 1, 2) * 2 - 1
    with torch.no_grad():
        mean = module.encode(pixels).latent_dist.mean
        expected = (mean - 0.1159) * 0.3611
        assert latents.shape == (1, 16, 4, 3)
        torch.testing.assert_close(latents, expected, rtol=0, atol=1e-6)
        decoded = decode(vae, latents)
        raw = module.decode(latents / 0.3611 + 0.1159).sample
    torch.testing.assert_close(decoded, ((raw + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1))


def test_a_sampled_latent_decodes_in_its_models_family(ae_file: Path) -> None:
    vae = load_vae(ae_file, device=CPU, dtype=torch.float32, family="sd3").vae
    assert vae.family is SD3
    latent = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    as_flux = decode(vae, latent, family=FLUX)
    flux_vae = load_vae(ae_file, device=CPU, dtype=torch.float32).vae
    assert torch.equal(as_flux, decode(flux_vae, latent))
    assert not torch.equal(as_flux, decode(vae, latent))


def test_a_4_channel_family_on_the_ae_is_refused(ae_file: Path) -> None:
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_vae(ae_file, device=CPU, dtype=torch.float32, family="sdxl")
    message = str(caught.value)
    assert "a VAE with 16 latent channels; SD 1.x, SD 2.x and SDXL VAEs have 4" in message
    assert "Choose the VAE's family on the node (auto tells 4 from 16 channels)" in message
