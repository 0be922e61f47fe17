"""Inpainting checkpoints: a UNet taking 9 input channels (latent, mask, masked-image latent) is
detected as such, loads from the single-file layout into exactly the modules it was written
from, and other channel counts are refused naming the count and what is supported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from latentloom.models.detect import detect
from latentloom.models.errors import CheckpointError
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import make_tiny_checkpoint, tiny_modules

CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inpaint")
    return {
        "inpaint": make_tiny_checkpoint("sd15", folder / "inpaint.safetensors", inpaint=True),
        "plain": make_tiny_checkpoint("sd15", folder / "plain.safetensors"),
    }


def test_detection_says_inpainting_from_the_first_conv(files: dict[str, Path]) -> None:
    found = {}
    for name, path in files.items():
        with SafetensorsFile(path) as file:
            found[name] = detect(file.keys(), file.metadata, path, weights=file)
            if name == "inpaint":
                assert file.shape(CONV_IN) == (32, 9, 3, 3)
    assert found["inpaint"].variant == "inpainting"
    assert found["plain"].variant == "standard"
    assert found["inpaint"].family.name == "sd15"
    assert found["inpaint"].prediction_type == "epsilon"


def test_the_inpainting_unet_loads_exactly_and_shares_the_base_vae_and_text(
    files: dict[str, Path],
) -> None:
    loaded = load_checkpoint(files["inpaint"], device="cpu", dtype=torch.float32)
    plain = load_checkpoint(files["plain"], device="cpu", dtype=torch.float32)
    reference = tiny_modules("sd15", seed=0, inpaint=True).components()
    unet: Any = loaded.model.unet  # diffusers' classes are untyped for mypy
    assert unet.config.in_channels == 9 and unet.config.out_channels == 4
    for key, value in reference["unet"].state_dict().items():
        assert torch.equal(unet.state_dict()[key], value), key
    pairs: list[tuple[Any, Any]] = [
        (loaded.vae.module, plain.vae.module),
        (loaded.clip.encoders[0].model, plain.clip.encoders[0].model),
    ]
    for module, base in pairs:
        base_state = base.state_dict()
        assert all(torch.equal(v, base_state[k]) for k, v in module.state_dict().items())


def test_other_input_channel_counts_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    tensors = load_file(files["inpaint"])
    tensors[CONV_IN] = tensors[CONV_IN][:, :8].contiguous()  # an 8-channel (pix2pix-like) UNet
    path = tmp_path / "eight.safetensors"
    save_file(tensors, path)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path, device="cpu", dtype=torch.float32)
    assert (
        "the UNet takes 8 input channels; supported: 4 (the latent alone) or 9 (an inpainting "
        "model: latent, mask and masked-image latent)"
    ) in str(raised.value)
