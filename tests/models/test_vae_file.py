"""Load VAE: every layout loads exactly the VAE of the checkpoint it was cut from; the latent
scale follows the family chosen, a diffusers config, or the stated SD 1.x assumption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.errors import PickleCheckpointError, UnrecognizedCheckpointError
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.tiny_parts import make_tiny_unet, make_tiny_vae
from latentloom.models.vae_file import ASSUMED, load_vae
from tests.models.conftest import TinyFile

CPU = torch.device("cpu")


def state(module: Any) -> dict[str, torch.Tensor]:
    return dict(module.state_dict())


@pytest.fixture(scope="module")
def reference(tiny_file: TinyFile) -> dict[str, torch.Tensor]:
    return state(load_checkpoint(tiny_file("sd15"), device="cpu", dtype=None).vae.module)


def old_attention_names(path: Path, out: Path) -> Path:
    """A diffusers VAE file as diffusers releases before 0.15 named the attention."""
    renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    with SafetensorsFile(path) as file:
        tensors = {}
        for key in file:
            name = key
            for new, old in renames.items():
                name = name.replace(f".attentions.0.{new}.", f".attentions.0.{old}.")
            tensors[name] = file.read(key)
    save_tensors(out, tensors)
    return out


@pytest.mark.parametrize("layout", ["original", "prefixed", "diffusers", "folder", "old"])
def test_every_layout_loads_the_checkpoints_vae(
    tmp_path: Path, reference: dict[str, torch.Tensor], layout: str
) -> None:
    if layout == "folder":
        path = make_tiny_vae(tmp_path / "vae-folder", layout="diffusers")
    elif layout == "old":
        made = make_tiny_vae(tmp_path / "new.safetensors", layout="diffusers")
        path = old_attention_names(made, tmp_path / "old.safetensors")
    else:
        path = make_tiny_vae(tmp_path / "vae.safetensors", layout=layout)  # type: ignore[arg-type]
    loaded = load_vae(path, device=CPU, dtype=torch.float32)
    assert loaded.vae.source == str(path)
    ours = state(loaded.vae.module)
    assert ours.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(ours[key], value), key


def test_auto_assumes_sd1_and_says_so(tmp_path: Path) -> None:
    path = make_tiny_vae(tmp_path / "vae.safetensors")
    loaded = load_vae(path, device=CPU, dtype=torch.float32)
    assert (loaded.vae.family.name, loaded.family_rule) == ("sd15", ASSUMED)
    chosen = load_vae(path, device=CPU, dtype=torch.float32, family="sdxl")
    assert (chosen.vae.family.name, chosen.family_rule) == ("sdxl", "set to SDXL")
    assert chosen.vae.module.config.scaling_factor == 0.13025  # type: ignore[attr-defined]


def test_a_folder_takes_its_family_from_the_config(tmp_path: Path) -> None:
    path = make_tiny_vae(tmp_path / "sdxl-vae", family="sdxl", layout="diffusers")
    loaded = load_vae(path, device=CPU, dtype=torch.float32)
    assert loaded.vae.family.name == "sdxl"
    assert loaded.family_rule == "config.json scaling_factor 0.13025: SDXL"


def test_a_unet_file_is_not_a_vae(tmp_path: Path) -> None:
    path = make_tiny_unet(tmp_path / "unet.safetensors")
    with pytest.raises(UnrecognizedCheckpointError) as raised:
        load_vae(path, device=CPU, dtype=torch.float32)
    assert str(raised.value) == (
        f"{path}: not a VAE: expected encoder.down.* (original layout) or encoder.down_blocks.* "
        "(diffusers layout), optionally under first_stage_model.; found input_blocks.0.0.bias, "
        "input_blocks.0.0.weight, input_blocks.1.0.emb_layers.1.bias, "
        "input_blocks.1.0.emb_layers.1.weight, input_blocks.1.0.in_layers.0.bias, "
        "input_blocks.1.0.in_layers.0.weight"
    )


def test_pickle_files_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "vae.pt"
    path.write_bytes(b"\x80\x02not really")
    with pytest.raises(PickleCheckpointError):
        load_vae(path, device=CPU, dtype=torch.float32)
