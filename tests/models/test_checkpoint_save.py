"""Checkpoint Save round trips: what is saved loads back as the same weights, LoRA patches baked
in, prediction type kept, an SDXL refiner in its own layout; what a file cannot carry is
refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.checkpoint_save import save_checkpoint
from latentloom.models.errors import CheckpointError
from latentloom.models.family import FamilyName
from latentloom.models.handles import Checkpoint
from latentloom.models.load import load_checkpoint
from latentloom.models.lora import apply_lora
from latentloom.models.lora_tiny import make_tiny_lora
from latentloom.models.patching import applied
from latentloom.models.refiner import is_refiner_clip, is_refiner_model
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import make_tiny_checkpoint
from tests.models.conftest import TinyFile


def weights(module: Any, patches: tuple[Any, ...] = ()) -> dict[str, torch.Tensor]:
    with applied(module, patches):
        return {key: value.clone() for key, value in module.state_dict().items()}


def assert_same(saved: Checkpoint, original: Checkpoint) -> None:
    pairs = [
        (saved.model.unet, original.model.unet, original.model.patches),
        (saved.vae.module, original.vae.module, ()),
        *(
            (ours.model, theirs.model, theirs.patches)
            for ours, theirs in zip(saved.clip.encoders, original.clip.encoders, strict=True)
        ),
    ]
    for ours, theirs, patches in pairs:
        mine, reference = weights(ours), weights(theirs, patches)
        assert mine.keys() == reference.keys()
        for key, value in reference.items():
            assert torch.equal(mine[key], value), key


@pytest.mark.parametrize(("family", "v"), [("sd15", False), ("sdxl", False), ("sd2", True)])
def test_saved_checkpoints_load_back_identically(
    tmp_path: Path, tiny_file: TinyFile, family: FamilyName, v: bool
) -> None:
    original = load_checkpoint(tiny_file(family, v_prediction=v), device="cpu", dtype=None)
    path = tmp_path / "saved.safetensors"
    save_checkpoint(path, original.model, original.clip, original.vae, metadata={"a": "b"})
    saved = load_checkpoint(path, device="cpu", dtype=None)
    assert saved.model.family == original.model.family
    assert saved.model.prediction_type == ("v_prediction" if v else "epsilon")
    assert_same(saved, original)
    with SafetensorsFile(path) as file:
        assert file.metadata["a"] == "b"
        assert file.metadata["modelspec.prediction_type"] == ("v" if v else "epsilon")
        assert ("v_pred" in file) is v
        assert file.dtype("first_stage_model.decoder.conv_out.weight") == torch.float32


def test_lora_patches_are_baked_in_and_the_source_is_untouched(
    tmp_path: Path, tiny_file: TinyFile
) -> None:
    original = load_checkpoint(tiny_file("sd15"), device="cpu", dtype=None)
    before = weights(original.model.unet)
    unet: Any = original.model.unet
    lora = make_tiny_lora(unet, original.clip, tmp_path / "lora.safetensors")
    model, clip = apply_lora(original.model, original.clip, lora, 0.7, 0.4)
    path = tmp_path / "patched.safetensors"
    save_checkpoint(path, model, clip, original.vae)
    saved = load_checkpoint(path, device="cpu", dtype=None)
    assert_same(saved, Checkpoint(model, clip, original.vae))
    baked = weights(saved.model.unet)
    assert any(not torch.equal(baked[key], before[key]) for key in before)
    assert all(
        torch.equal(value, before[key]) for key, value in weights(original.model.unet).items()
    )


def test_parts_of_two_families_are_refused(tmp_path: Path, tiny_file: TinyFile) -> None:
    sd15 = load_checkpoint(tiny_file("sd15"), device="cpu", dtype=None)
    sdxl = load_checkpoint(tiny_file("sdxl"), device="cpu", dtype=None)
    path = tmp_path / "mixed.safetensors"
    with pytest.raises(CheckpointError) as raised:
        save_checkpoint(path, sd15.model, sdxl.clip, sd15.vae)
    assert str(raised.value) == (
        f"{path}: cannot be saved: the model is SD 1.x but the CLIP is SDXL; a checkpoint holds "
        "the parts of one family"
    )
    assert not path.exists()
    # A CLIP Set Last Layer choice is not part of the weights: it saves as the plain CLIP.
    skipped = dataclasses.replace(
        sd15.clip,
        encoders=tuple(dataclasses.replace(e, stop_at_layer=-2) for e in sd15.clip.encoders),
    )
    save_checkpoint(path, sd15.model, skipped, sd15.vae)
    assert path.is_file()


def test_a_refiner_saves_in_its_own_layout_and_loads_back_identically(
    tmp_path: Path, tiny_file: TinyFile
) -> None:
    refiner_path = make_tiny_checkpoint("sdxl-refiner", tmp_path / "refiner.safetensors", seed=0)
    original = load_checkpoint(refiner_path, device="cpu", dtype=None)
    path = tmp_path / "saved-refiner.safetensors"
    save_checkpoint(path, original.model, original.clip, original.vae)
    saved = load_checkpoint(path, device="cpu", dtype=None)
    assert is_refiner_model(saved.model) and is_refiner_clip(saved.clip)
    assert_same(saved, original)
    with SafetensorsFile(path) as file, SafetensorsFile(refiner_path) as source:
        assert set(file.keys()) == set(source.keys())  # the original refiner's names exactly
    # A refiner's UNet with the base's CLIP (or the other way round) is no checkpoint.
    base = load_checkpoint(tiny_file("sdxl"), device="cpu", dtype=None)
    mixed = tmp_path / "mixed.safetensors"
    with pytest.raises(CheckpointError) as raised:
        save_checkpoint(mixed, original.model, base.clip, original.vae)
    assert str(raised.value) == (
        f"{mixed}: cannot be saved: the model is an SDXL refiner's but the CLIP is the SDXL "
        "base's; a refiner checkpoint holds the refiner UNet with bigG alone (connect both "
        "from the refiner's Load Checkpoint)"
    )
    with pytest.raises(CheckpointError, match="the CLIP is an SDXL refiner's but the model"):
        save_checkpoint(mixed, base.model, original.clip, base.vae)
    assert not mixed.exists()


def test_an_sd3_model_is_refused_by_name(tmp_path: Path) -> None:
    sd3 = load_checkpoint(
        make_tiny_checkpoint("sd3", tmp_path / "sd3.safetensors", seed=0), device="cpu", dtype=None
    )
    path = tmp_path / "saved-sd3.safetensors"
    with pytest.raises(CheckpointError) as raised:
        save_checkpoint(path, sd3.model, sd3.clip, sd3.vae)
    assert str(raised.value) == (
        f"{path}: cannot be saved: saving SD 3.x models is not supported yet (SD 1.x, SD 2.x, "
        "SDXL and the SDXL refiner are); keep the original file, and apply LoRAs in the graph "
        "that loads it"
    )
    assert not path.exists()
