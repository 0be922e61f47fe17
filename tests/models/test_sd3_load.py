"""Loading SD 3.x single files: every component exactly as written, text encoders as present,
flow sampling with shift 3 and the MMDiT call; odd files refused with what was wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.handles import ClipTextEncoder, T5TextEncoder
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.sd3_call import Sd3Call
from latentloom.models.sd3_tiny import make_tiny_sd3, tiny_sd3_modules
from latentloom.models.tiny_t5 import tiny_t5_state_dict


def _equal_states(ours: Any, expected: Any) -> None:
    mine, theirs = ours.state_dict(), expected.state_dict()
    assert sorted(mine) == sorted(theirs)
    for key, tensor in theirs.items():
        assert torch.equal(mine[key].float(), tensor.float()), key


def test_full_file_loads_every_component_exactly(models_dir: Path) -> None:
    loaded = load_checkpoint(
        models_dir / "checkpoints" / "tiny-sd3.safetensors", device="cpu", dtype=torch.float32
    )
    written = tiny_sd3_modules()
    _equal_states(loaded.model.unet, written["unet"])
    _equal_states(loaded.vae.module, written["vae"])
    clip_l, clip_g, t5 = loaded.clip.encoders
    assert isinstance(clip_l, ClipTextEncoder) and isinstance(clip_g, ClipTextEncoder)
    _equal_states(clip_l.model, written["text_encoder"])
    _equal_states(clip_g.model, written["text_encoder_2"])
    assert (clip_l.pad_token_id, clip_g.pad_token_id) == (49407, 0)
    assert clip_g.model.config.hidden_act == "gelu"
    assert isinstance(t5, T5TextEncoder) and t5.min_length == 77
    expected_t5 = tiny_t5_state_dict(4, prefix="")
    assert torch.equal(
        t5.model.state_dict()["shared.weight"], expected_t5["shared.weight"].half().float()
    )
    assert loaded.model.family.name == loaded.clip.family.name == loaded.vae.family.name == "sd3"
    sampling: Any = loaded.model.model_sampling
    assert (sampling.kind, sampling.shift, sampling.multiplier) == ("flow", 3.0, 1000.0)
    assert loaded.model.prediction_rule == (
        "SD 3.5 medium-shaped (2 blocks with a second image attention); rectified flow, shift 3.0"
    )
    assert isinstance(loaded.model.network_call, Sd3Call)
    assert loaded.model.network_call.transformer is loaded.model.unet


def test_text_encoders_are_each_optional(tmp_path: Path) -> None:
    no_t5 = load_checkpoint(
        make_tiny_sd3(tmp_path / "no-t5.safetensors", with_t5=False), device="cpu", dtype=None
    )
    assert [type(e).__name__ for e in no_t5.clip.encoders] == ["ClipTextEncoder"] * 2
    bare = load_checkpoint(
        make_tiny_sd3(tmp_path / "bare.safetensors", with_t5=False, with_clip=False),
        device="cpu",
        dtype=None,
    )
    assert bare.clip.encoders == ()


def test_a_missing_transformer_tensor_is_reported_before_loading(tmp_path: Path) -> None:
    source = make_tiny_sd3(tmp_path / "full.safetensors", with_t5=False)
    with SafetensorsFile(source) as file:
        tensors = {k: file.read(k) for k in file if "joint_blocks.1.x_block.mlp.fc2.bias" not in k}
    tensors["model.diffusion_model.joint_blocks.0.x_block.attn.extra.weight"] = torch.zeros(2)
    broken = tmp_path / "broken.safetensors"
    save_tensors(broken, tensors)
    with pytest.raises(WeightMismatchError) as caught:
        load_checkpoint(broken, device="cpu", dtype=None)
    message = str(caught.value)
    assert (
        "'model.diffusion_model.joint_blocks.0.x_block.attn.extra.weight' has no unet counterpart"
        in message
    )
    assert "missing from the file: unet 'transformer_blocks.1.ff.net.2.bias'" in message


def test_a_transformer_without_its_vae_is_refused_with_advice(tmp_path: Path) -> None:
    source = make_tiny_sd3(tmp_path / "full.safetensors", with_t5=False, with_clip=False)
    with SafetensorsFile(source) as file:
        tensors = {k: file.read(k) for k in file if not k.startswith("first_stage_model.")}
    broken = tmp_path / "no-vae.safetensors"
    save_tensors(broken, tensors)
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_checkpoint(broken, device="cpu", dtype=None)
    assert str(caught.value) == (
        f"{broken}: an SD 3.x transformer without its VAE (no first_stage_model.* tensors). "
        "A checkpoint must hold the 16-channel VAE too; use a file that includes it "
        "(Stability's sd3.5_*.safetensors do)"
    )
