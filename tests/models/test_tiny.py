from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.models.family import FamilyName
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import make_tiny_checkpoint
from tests.models.conftest import TinyFile


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = make_tiny_checkpoint("sd15", tmp_path / "a.safetensors", seed=7)
    again = make_tiny_checkpoint("sd15", tmp_path / "b.safetensors", seed=7)
    other = make_tiny_checkpoint("sd15", tmp_path / "c.safetensors", seed=8)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_building_leaves_the_global_random_state_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_checkpoint("sd2", tmp_path / "t.safetensors", seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("family", "limit"), [("sd15", 6e6), ("sd2", 6e6), ("sdxl", 12e6)])
def test_files_are_small_fp16_and_labelled(
    tiny_file: TinyFile, family: FamilyName, limit: float
) -> None:
    path = tiny_file(family)
    assert path.stat().st_size < limit
    with SafetensorsFile(path) as file:
        assert file.metadata["latentloom.tiny"] == family
        assert {file.dtype(key) for key in file} == {torch.float16}


def test_unknown_family_is_refused(tmp_path: Path) -> None:
    expected = "family 'flux' is not known; use one of sd15, sd2, sdxl, sdxl-refiner, sd3, flux-dev, flux-schnell"
    with pytest.raises(ValueError, match=expected):
        make_tiny_checkpoint("flux", tmp_path / "x.safetensors")  # type: ignore[arg-type]


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_tiny_models_compute_finite_moderate_values(
    tiny_file: TinyFile, family: FamilyName
) -> None:
    """Text -> UNet -> VAE decode on random weights: no NaN, nothing explodes."""
    checkpoint = load_checkpoint(tiny_file(family), device="cpu", dtype=torch.float32)
    hidden, pooled = [], None
    for encoder in checkpoint.clip.encoders:
        ids = encoder.tokenizer(
            "a photo of a cat", padding="max_length", max_length=77, return_tensors="pt"
        ).input_ids
        output = encoder.model(input_ids=ids, output_hidden_states=True)
        hidden.append(output.hidden_states[-2])
        pooled = getattr(output, "text_embeds", pooled)
    context = torch.cat(hidden, dim=-1)
    latent = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    extra = {}
    if family == "sdxl":
        sizes = torch.tensor([[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]])
        extra = {"added_cond_kwargs": {"text_embeds": pooled, "time_ids": sizes}}
    with torch.no_grad():
        noise = checkpoint.model.unet(latent, 500, encoder_hidden_states=context, **extra).sample
        image = checkpoint.vae.module.decode(latent / checkpoint.vae.family.vae_scaling_factor)
    assert noise.shape == latent.shape and image.sample.shape == (1, 3, 128, 128)
    for values in (context, noise, image.sample):
        assert torch.isfinite(values).all()
        assert 0.01 < values.std().item() < 10
