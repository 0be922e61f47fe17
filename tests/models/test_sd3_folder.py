"""SD 3.x diffusers folders load the same modules as the single file they were saved from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from latentloom.models.handles import T5TextEncoder
from latentloom.models.load import load_checkpoint


def _save_folder(loaded: Any, folder: Path, with_t5: bool) -> None:
    """The layout `StableDiffusion3Pipeline.save_pretrained` writes (tokenizers left out)."""
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusion3Pipeline"}), encoding="utf-8"
    )
    loaded.model.unet.save_pretrained(folder / "transformer")
    loaded.vae.module.save_pretrained(folder / "vae")
    clip_l, clip_g, t5 = loaded.clip.encoders
    clip_l.model.save_pretrained(folder / "text_encoder")
    clip_g.model.save_pretrained(folder / "text_encoder_2")
    if with_t5:
        t5.model.save_pretrained(folder / "text_encoder_3")


def _states_equal(a: Any, b: Any) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return sorted(first) == sorted(second) and all(torch.equal(first[k], second[k]) for k in first)


def test_folder_loads_as_the_single_file_does(models_dir: Path, tmp_path: Path) -> None:
    single = load_checkpoint(
        models_dir / "checkpoints" / "tiny-sd3.safetensors", device="cpu", dtype=torch.float32
    )
    _save_folder(single, tmp_path / "sd3", with_t5=True)
    folder = load_checkpoint(tmp_path / "sd3", device="cpu", dtype=torch.float32)
    assert folder.model.family.name == "sd3"
    assert folder.model.model_sampling.kind == "flow"
    assert _states_equal(folder.model.unet, single.model.unet)
    assert _states_equal(folder.vae.module, single.vae.module)
    for ours, theirs in zip(folder.clip.encoders, single.clip.encoders, strict=True):
        assert type(ours) is type(theirs)
        assert _states_equal(ours.model, theirs.model)
    assert isinstance(folder.clip.encoders[-1], T5TextEncoder)


def test_a_folder_without_t5_has_the_two_clip_towers(models_dir: Path, tmp_path: Path) -> None:
    single = load_checkpoint(
        models_dir / "checkpoints" / "tiny-sd3.safetensors", device="cpu", dtype=None
    )
    _save_folder(single, tmp_path / "sd3", with_t5=False)
    folder = load_checkpoint(tmp_path / "sd3", device="cpu", dtype=None)
    assert [type(e).__name__ for e in folder.clip.encoders] == ["ClipTextEncoder"] * 2
