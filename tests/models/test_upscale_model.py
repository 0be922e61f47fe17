"""Upscale model files: spandrel detects the tiny ESRGAN in both real key layouts; pickles and
unknown weights are refused with pinned messages; spandrel loads without torchvision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentloom.models.errors import PickleCheckpointError, UnrecognizedCheckpointError
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.tiny_upscale import make_tiny_upscaler, tiny_upscaler_tensors
from latentloom.models.upscale_model import PICKLE_ADVICE, load_upscale_model

CPU = torch.device("cpu")


def image(side: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layout", ["new", "old"])
def test_spandrel_detects_the_tiny_esrgan_in_either_layout(layout: str, tmp_path: Path) -> None:
    path = make_tiny_upscaler(tmp_path / f"{layout}.safetensors", layout=layout)  # type: ignore[arg-type]
    model = load_upscale_model(path, device=CPU)
    assert (model.architecture, model.scale) == ("ESRGAN", 4)
    assert (model.input_channels, model.output_channels) == (3, 3)
    assert model.tags == ("8nf", "1nb")
    assert model.parameters == 226_099
    assert model.tiling == "supported"
    assert model.placement == (CPU, torch.float32)
    assert tuple(model(image()).shape) == (1, 3, 96, 96)


def test_both_layouts_hold_the_same_network(tmp_path: Path) -> None:
    new = load_upscale_model(make_tiny_upscaler(tmp_path / "n.safetensors"), device=CPU)
    old = load_upscale_model(
        make_tiny_upscaler(tmp_path / "o.safetensors", layout="old"), device=CPU
    )
    assert torch.equal(new(image()), old(image()))


def test_real_esrgan_names_are_the_ones_spandrel_reads() -> None:
    names = set(tiny_upscaler_tensors())
    assert {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight"} <= names
    assert {"conv_up1.weight", "conv_up2.weight", "conv_hr.weight", "conv_last.weight"} <= names
    old = set(tiny_upscaler_tensors(layout="old"))
    assert {"model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.1.weight"} <= old
    assert {"model.3.weight", "model.6.weight", "model.8.weight", "model.10.weight"} <= old


@pytest.mark.parametrize(("scale", "side"), [(1, 24), (2, 48), (8, 192)])
def test_other_scales_load_with_their_scale(scale: int, side: int, tmp_path: Path) -> None:
    model = load_upscale_model(
        make_tiny_upscaler(tmp_path / "s.safetensors", scale=scale), device=CPU
    )
    assert model.scale == scale
    assert tuple(model(image()).shape) == (1, 3, side, side)


def test_the_tiny_model_enlarges_like_nearest_neighbour_plus_texture(tmp_path: Path) -> None:
    model = load_upscale_model(make_tiny_upscaler(tmp_path / "t.safetensors"), device=CPU)
    source = image(32, seed=1)
    output = model(source)
    nearest = torch.nn.functional.interpolate(source, scale_factor=4, mode="nearest")
    difference = (output - nearest).abs()
    assert 0.01 < difference.mean().item() < 0.05  # measured 0.030: texture, not noise
    assert output.min().item() >= 0.0 and output.max().item() <= 1.0


def test_a_pth_file_is_refused_by_name_without_being_opened(tmp_path: Path) -> None:
    path = tmp_path / "4x-UltraSharp.pth"
    path.write_bytes(b"never read")
    with pytest.raises(PickleCheckpointError) as refused:
        load_upscale_model(path, device=CPU)
    assert str(refused.value) == (
        f"{path}: '.pth' files are pickle checkpoints and are not loaded. {PICKLE_ADVICE}"
    )
    assert "params_ema" in PICKLE_ADVICE and "upscale_models/" in PICKLE_ADVICE


def test_a_renamed_pickle_is_refused_by_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "renamed.safetensors"
    torch.save(tiny_upscaler_tensors(), path)  # a zip of pickles, whatever the name says
    with pytest.raises(PickleCheckpointError) as refused:
        load_upscale_model(path, device=CPU)
    assert str(refused.value) == (
        f"{path}: this is not a safetensors file but a zip archive, the format torch.save "
        f"writes (a pickle checkpoint). {PICKLE_ADVICE}"
    )


def test_weights_spandrel_does_not_know_are_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "mystery.safetensors"
    save_tensors(path, {"foo.weight": torch.zeros(2, 2), "bar.bias": torch.zeros(2)})
    with pytest.raises(UnrecognizedCheckpointError) as refused:
        load_upscale_model(path, device=CPU)
    assert str(refused.value).startswith(
        f"{path}: spandrel 0.4.2 recognises no architecture in these weights (2 tensors: "
        "bar.bias, foo.weight, ...). Upscale models spandrel supports include ESRGAN"
    )


def test_spandrel_imports_without_torchvision_and_leaves_no_stand_in() -> None:
    probe = (
        "import importlib.util, sys\n"
        "from latentloom.models.upscale_model import spandrel_module\n"
        "spandrel = spandrel_module()\n"
        "print(importlib.util.find_spec('torchvision') is None, 'torchvision' in sys.modules,"
        " 'ESRGAN' in [a.architecture.id for a in spandrel.MAIN_REGISTRY.architectures()])\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", probe], capture_output=True, text=True, check=True
    )
    no_torchvision, left_behind, esrgan = result.stdout.split()
    assert esrgan == "True"
    if no_torchvision == "True":  # this machine: no CPU torchvision for our torch
        assert left_behind == "False"
