"""Shared fixtures: tiny random-weight models in the real single-file layout, made once per run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from latentloom.engine.executor import Engine
from tests.support import WORKFLOWS, make_engine


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder in the ComfyUI layout with the checkpoints and LoRA the examples name."""
    from latentloom.models.load import load_checkpoint
    from latentloom.models.lora_tiny import make_tiny_lora
    from latentloom.models.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    (root / "loras").mkdir()
    sd15 = root / "checkpoints" / "tiny-sd15.safetensors"
    make_tiny_checkpoint("sd15", sd15, seed=0)
    make_tiny_checkpoint("sdxl", root / "checkpoints" / "tiny-sdxl.safetensors", seed=0)
    refiner = root / "checkpoints" / "tiny-sdxl-refiner.safetensors"
    make_tiny_checkpoint("sdxl-refiner", refiner, seed=0)  # shares tiny-sdxl's VAE and bigG
    make_tiny_checkpoint("sd3", root / "checkpoints" / "tiny-sd3.safetensors", seed=0)
    loaded = load_checkpoint(sd15, device=None, dtype=None)
    make_tiny_lora(loaded.model.unet, loaded.clip, root / "loras" / "tiny-lora-sd15.safetensors")
    from latentloom.models.tiny_parts import make_example_parts, make_split_parts

    make_example_parts(root)  # Load VAE and embedding examples
    make_split_parts(root)  # unet/ and clip/ files for the split-checkpoint loaders
    from latentloom.models.ip_adapter_tiny import make_example_ip_adapters

    make_example_ip_adapters(root)  # clip_vision/ and ipadapter/ files for IP-Adapter
    from latentloom.models.tiny_upscale import make_tiny_upscaler

    make_tiny_upscaler(root / "upscale_models" / "tiny-esrgan-x4.safetensors")
    from latentloom.models.tiny_control import make_tiny_controlnet, make_tiny_t2i_adapter

    make_tiny_controlnet("sd15", root / "controlnet" / "tiny-controlnet-sd15.safetensors")
    make_tiny_controlnet("sdxl", root / "controlnet" / "tiny-controlnet-sdxl.safetensors")
    make_tiny_t2i_adapter("sdxl", root / "controlnet" / "tiny-t2i-adapter-sdxl.safetensors")
    from latentloom.models.flux_tiny import make_tiny_flux_parts

    make_tiny_flux_parts(root)  # FLUX.1: diffusion_models/, text_encoders/ and vae/ files
    return root


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "input"
    shutil.copytree(WORKFLOWS / "inputs", folder)
    return folder


@pytest.fixture
def engine(models_dir: Path, tmp_path: Path, input_dir: Path) -> Engine:
    return make_engine(models_dir, tmp_path / "output", input_dir)
