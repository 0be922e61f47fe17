"""Control-LoRA: a ControlNet stored as low-rank deltas on the UNet it is applied to.

Oracle: a tiny Control-LoRA written in Stability's key layout from a tiny ControlNet and the
UNet being sampled (full-rank deltas), so built on that UNet it must equal the ControlNet:
weights to float32 round-off, sampled latents within the samplers' tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from latentloom.models.control_lora import ControlLoraSource, ControlLoraWeights
from latentloom.models.control_lora_tiny import write_control_lora
from latentloom.models.controlnet import load_control_model
from latentloom.models.controlnet_source import ControlNetSource
from latentloom.models.handles import ControlCall
from tests.sampling.oracles import IGNORE_DIFFUSERS_NUMPY_WARNINGS, compare
from tests.sampling.test_control import control_image, controlnet_for, with_control
from tests.sampling.test_denoiser import karras_scheduler, model_for, ours
from tests.sampling.tiny_models import conditioning

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS


def written(tmp_path: Path, sdxl: bool = False) -> tuple[Any, Any, Path]:
    model = model_for(karras_scheduler(), sdxl=sdxl)
    control = controlnet_for(model, seed=3)
    path = write_control_lora(control.module, model.unet, model.family, tmp_path / "cl.safetensors")
    return model, control, path


def test_the_file_has_stabilitys_layout(tmp_path: Path) -> None:
    _, _, path = written(tmp_path)
    keys = set(load_file(str(path)))
    assert "lora_controlnet" in keys
    assert {"input_blocks.1.0.in_layers.2.up", "input_blocks.1.0.in_layers.2.down"} <= keys
    assert "input_blocks.1.0.in_layers.2.weight" not in keys  # the UNet has it: a delta
    assert {"input_hint_block.0.weight", "zero_convs.0.0.weight", "middle_block_out.0.bias"} <= keys
    tensors = load_file(str(path))
    assert tensors["input_blocks.1.0.in_layers.2.down"].shape[1:] == (32, 3, 3)
    assert tensors["input_blocks.1.0.in_layers.2.up"].shape[2:] == (1, 1)


@pytest.mark.parametrize("sdxl", [False, True])
def test_built_on_its_unet_it_is_the_controlnet(tmp_path: Path, sdxl: bool) -> None:
    model, control, path = written(tmp_path, sdxl)
    loaded = load_control_model(path, device="cpu", dtype=torch.float32)
    assert (loaded.kind, loaded.display_kind, loaded.family.name) == (
        "control_lora",
        "Control-LoRA",
        "sdxl" if sdxl else "sd15",
    )
    weights = loaded.module
    assert isinstance(weights, ControlLoraWeights)
    built = weights.controlnet_for(model)
    assert weights.controlnet_for(model) is built  # kept for the same base model
    expected = control.module.state_dict()
    got = built.state_dict()
    assert set(got) == set(expected)
    assert max(float((got[k] - expected[k]).abs().max()) for k in got) < 1e-5


def test_sampling_with_it_equals_sampling_with_the_controlnet(tmp_path: Path) -> None:
    model, control, path = written(tmp_path)
    loaded = load_control_model(path, device="cpu", dtype=torch.float32)
    image = control_image()
    lora, full = ControlLoraSource(loaded, image), ControlNetSource(control, image)
    short = {"steps": 4}
    got = ours(
        model, with_control(conditioning(1), lora), with_control(conditioning(2), lora), **short
    )
    expected = ours(
        model, with_control(conditioning(1), full), with_control(conditioning(2), full), **short
    )
    assert compare(got, expected) <= 1e-5
    assert compare(ours(model, conditioning(1), conditioning(2), **short), expected) > 1e-3


def test_outside_a_sampler_it_says_it_needs_the_model(tmp_path: Path) -> None:
    _, _, path = written(tmp_path)
    source = ControlLoraSource(load_control_model(path, device="cpu"), control_image())
    call = ControlCall(
        torch.zeros(1, 4, 8, 8),
        torch.tensor(1.0),
        torch.tensor(1.0),
        torch.zeros(1, 77, 32),
        None,
        1,
    )
    with pytest.raises(ValueError, match="built on the model being sampled"):
        source.residuals(call)
