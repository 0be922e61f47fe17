"""ControlNet / T2I-Adapter loading: every layout gives the same module as was written.

The tiny writers (`tiny_control.py`) save one seeded module in each layout users' files come
in; loading must give back every tensor bit for bit and the same config. The original-layout
names are also checked against diffusers' own whole-dict converter, so the writer and the
reader cannot share one mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from latentloom.models.controlnet import load_control_model
from latentloom.models.errors import PickleCheckpointError, UnrecognizedCheckpointError
from latentloom.models.tiny import tiny_unet_config
from latentloom.models.tiny_control import (
    make_tiny_controlnet,
    make_tiny_t2i_adapter,
    tiny_adapter,
    tiny_controlnet,
)

FAMILIES = ("sd15", "sdxl")


def _config(module: Any) -> dict[str, Any]:
    """The config's values, tuples as lists, without diffusers' bookkeeping of defaults."""
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in module.config.items()
        if k not in ("_use_default_values", "_class_name")
    }


def _same_state(loaded: Any, reference: Any) -> None:
    ours, theirs = loaded.state_dict(), reference.state_dict()
    assert set(ours) == set(theirs)
    unequal = [key for key in theirs if not torch.equal(ours[key], theirs[key])]
    assert unequal == []


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layout", ["original", "diffusers", "folder"])
def test_controlnet_layouts_load_the_written_weights(
    tmp_path: Path, family: str, layout: str
) -> None:
    suffix = "" if layout == "folder" else ".safetensors"
    path = make_tiny_controlnet(family, tmp_path / f"cn{suffix}", layout=layout)  # type: ignore[arg-type]
    loaded = load_control_model(path, device="cpu", dtype="fp32")
    reference = tiny_controlnet(tiny_unet_config(family))  # type: ignore[arg-type]
    assert (loaded.kind, loaded.family.name) == ("controlnet", family)
    assert _config(loaded.module) == _config(reference)
    _same_state(loaded.module, reference)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_t2i_adapter_layouts_load_the_written_weights(
    tmp_path: Path, family: str, layout: str
) -> None:
    path = make_tiny_t2i_adapter(family, tmp_path / "t2i.safetensors", layout=layout)  # type: ignore[arg-type]
    loaded = load_control_model(path, device="cpu", dtype="fp32")
    reference = tiny_adapter(family)  # type: ignore[arg-type]
    assert (loaded.kind, loaded.family.name) == ("t2i_adapter", family)
    assert _config(loaded.module) == _config(reference)
    _same_state(loaded.module, reference)


def test_original_names_agree_with_diffusers_converter(tmp_path: Path) -> None:
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    path = make_tiny_controlnet("sd15", tmp_path / "cn.safetensors", layout="original")
    original = load_file(str(path))
    reference = tiny_controlnet(tiny_unet_config("sd15"))
    config = {**dict(reference.config), "layers_per_block": 1}
    converted = convert_controlnet_checkpoint(original, config)
    assert set(converted) == set(reference.state_dict())
    assert all(torch.equal(converted[k], v.half()) for k, v in reference.state_dict().items())


def test_a_bare_original_file_loads_like_the_prefixed_one(tmp_path: Path) -> None:
    path = make_tiny_controlnet("sd15", tmp_path / "cn.safetensors", layout="original")
    bare = {k.removeprefix("control_model."): v for k, v in load_file(str(path)).items()}
    save_file(bare, str(tmp_path / "bare.safetensors"))
    loaded = load_control_model(tmp_path / "bare.safetensors", device="cpu", dtype="fp32")
    _same_state(loaded.module, tiny_controlnet(tiny_unet_config("sd15")))
    assert loaded.layout == "ControlNet, original (cldm) layout"


def test_pickles_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "control_sd15_canny.pth"
    path.write_bytes(b"\x80\x02not really a pickle")
    with pytest.raises(PickleCheckpointError):
        load_control_model(path, device="cpu", dtype="fp32")


def test_a_checkpoint_is_not_a_controlnet(tmp_path: Path) -> None:
    save_file(
        {"model.diffusion_model.out.2.weight": torch.zeros(4, 4)}, str(tmp_path / "x.safetensors")
    )
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_control_model(tmp_path / "x.safetensors", device="cpu", dtype="fp32")
    assert "not a ControlNet or T2I-Adapter" in str(caught.value)
    assert "found model.diffusion_model.out.2.weight" in str(caught.value)
    assert str(caught.value).endswith(
        "Put ControlNet and T2I-Adapter safetensors files in models/controlnet"
    )
