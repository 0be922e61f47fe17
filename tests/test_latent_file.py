"""`.latent` files: ComfyUI's key names, dtype and scaling, and the Save/Load Latent nodes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.latent_file import (
    LatentFileError,
    read_latent_file,
    to_scaled,
    write_latent_file,
)
from latentloom.models.family import SD15, SDXL
from latentloom.models.handles import Latent

SHAPE = (2, 4, 8, 8)


def ours() -> torch.Tensor:
    """A latent in our (scaled) space."""
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))


def test_written_file_has_comfyuis_keys_dtype_and_unscaled_latents(tmp_path: Path) -> None:
    path = tmp_path / "a.latent"
    write_latent_file(path, ours(), SD15, {"schema": "latentloom/workflow"})
    # Read back with the reference safetensors library, as ComfyUI's Load Latent does.
    raw = safetensors.torch.load_file(path)
    assert set(raw) == {"latent_tensor", "latent_format_version_0"}
    assert raw["latent_tensor"].dtype == torch.float32 and raw["latent_tensor"].shape == SHAPE
    assert raw["latent_format_version_0"].shape == (0,)
    assert raw["latent_format_version_0"].dtype == torch.float32
    # ComfyUI's LATENT is unscaled: its sampler's output is the scaled latent / 0.18215.
    assert torch.equal(raw["latent_tensor"], ours() / 0.18215)
    with safetensors.safe_open(path, "pt") as opened:
        metadata = opened.metadata()
    assert metadata["latentloom_family"] == "sd15"
    assert json.loads(metadata["latentloom"]) == {"schema": "latentloom/workflow"}


def test_sdxl_latents_are_unscaled_by_sdxls_factor_and_come_back(tmp_path: Path) -> None:
    path = tmp_path / "x.latent"
    write_latent_file(path, ours(), SDXL)
    assert torch.equal(safetensors.torch.load_file(path)["latent_tensor"], ours() / 0.13025)
    contents = read_latent_file(path)
    assert contents.family is SDXL and not contents.legacy
    torch.testing.assert_close(to_scaled(contents.samples, contents.family), ours())


def test_reads_a_file_written_the_way_comfyui_writes_it(tmp_path: Path) -> None:
    unscaled = ours() * 5
    path = tmp_path / "ComfyUI_00001_.latent"
    tensors = {"latent_tensor": unscaled, "latent_format_version_0": torch.tensor([])}
    safetensors.torch.save_file(tensors, path, metadata={"prompt": "{}"})
    contents = read_latent_file(path)
    assert torch.equal(contents.samples, unscaled)
    assert contents.family is None and not contents.legacy
    # Into our space with SD 1.x's factor, as ComfyUI's sampler does on the way in.
    assert torch.equal(to_scaled(contents.samples, None), unscaled * 0.18215)


def test_a_file_without_the_marker_is_legacy_and_rescaled(tmp_path: Path) -> None:
    path = tmp_path / "old.latent"
    safetensors.torch.save_file({"latent_tensor": ours()}, path)
    contents = read_latent_file(path)
    assert contents.legacy
    assert torch.equal(contents.samples, ours() * (1.0 / 0.18215))


def test_half_precision_files_read_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "half.latent"
    tensors = {"latent_tensor": ours().half(), "latent_format_version_0": torch.tensor([])}
    safetensors.torch.save_file(tensors, path)
    samples = read_latent_file(path).samples
    assert samples.dtype == torch.float32 and torch.equal(samples, ours().half().float())


def test_malformed_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    no_latent = tmp_path / "empty.latent"
    safetensors.torch.save_file({"something": torch.zeros(2)}, no_latent)
    with pytest.raises(
        LatentFileError, match=r"^empty.latent: no 'latent_tensor' tensor \(found: something\)$"
    ):
        read_latent_file(no_latent)
    flat = tmp_path / "flat.latent"
    safetensors.torch.save_file({"latent_tensor": torch.zeros(4, 8)}, flat)
    with pytest.raises(
        LatentFileError, match=r"'latent_tensor' has shape \[4, 8\]; expected \[B, C, H, W\]"
    ):
        read_latent_file(flat)
    garbage = tmp_path / "garbage.latent"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(
        LatentFileError, match=r"^garbage.latent: not a readable safetensors file: "
    ):
        read_latent_file(garbage)


# --- the nodes, in a real graph on the tiny checkpoint ---------------------------------------


def graph(nodes: dict[str, Any]) -> Any:
    return parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})


def load_and_save(load: dict[str, Any], **more: Any) -> Any:
    """A graph loading a latent and saving it again (a graph needs an output node)."""
    save = {"latent": {"node": "load", "output": "latent"}, "filename_prefix": "again"}
    return graph({"load": load, "save": {"type": "latent.save", "inputs": save}, **more})


CHECKPOINT = {"type": "loaders.checkpoint", "inputs": {"checkpoint": "tiny-sd15.safetensors"}}


def test_save_latent_writes_a_latent_file_under_the_output_folder(
    engine: Engine, tmp_path: Path
) -> None:
    nodes = {
        "checkpoint": CHECKPOINT,
        "empty": {"type": "latent.empty", "inputs": {"width": 64, "height": 64, "batch": 2}},
        "noise": {
            "type": "latent.add_noise",
            "inputs": {
                "latent": {"node": "empty", "output": "latent"},
                "seed": 3,
                "mode": "sigma",
                "amount": 1.0,
            },
        },
        "save": {
            "type": "latent.save",
            "inputs": {"latent": {"node": "noise", "output": "latent"}, "filename_prefix": "test"},
        },
    }
    result = engine.run(graph(nodes), targets=["noise", "save"])
    assert result.reports["save"] == {
        "latents": [{"filename": "test_00001.latent", "subfolder": "latents"}]
    }
    path = tmp_path / "output" / "latents" / "test_00001.latent"
    noise: Latent = result.outputs["noise"]["latent"]
    assert torch.equal(safetensors.torch.load_file(path)["latent_tensor"], noise.samples / 0.18215)


def test_load_latent_lists_latent_files_in_the_input_folder_and_loads_them(
    engine: Engine, input_dir: Path, tmp_path: Path
) -> None:
    unscaled = ours()
    tensors = {"latent_tensor": unscaled, "latent_format_version_0": torch.tensor([])}
    safetensors.torch.save_file(tensors, input_dir / "from_comfy.latent")
    assert engine.list_choices("input_latents") == ["from_comfy.latent"]
    load: dict[str, Any] = {"type": "latent.load", "inputs": {"latent": "from_comfy.latent"}}
    run = engine.run(load_and_save(load), targets=["load", "save"])
    latent: Latent = run.outputs["load"]["latent"]
    assert torch.equal(latent.samples, unscaled * 0.18215) and latent.family is None
    # With a model connected, its family decides (and is recorded on the latent).
    with_model = {
        **load,
        "inputs": {**load["inputs"], "model": {"node": "checkpoint", "output": "model"}},
    }
    result = engine.run(load_and_save(with_model, checkpoint=CHECKPOINT), targets=["load"])
    assert result.outputs["load"]["latent"].family is SD15


def test_load_latent_refuses_names_that_are_not_latent_files(engine: Engine) -> None:
    problems = engine.validate(
        load_and_save({"type": "latent.load", "inputs": {"latent": "landscape.png"}})
    )
    assert [(p.node, p.input, p.code) for p in problems] == [("load", "latent", "model_not_found")]
    assert "not found in the input_latents folders" in problems[0].message


def test_a_saved_latent_loads_back(engine: Engine, input_dir: Path, tmp_path: Path) -> None:
    write_latent_file(tmp_path / "mine.latent", ours(), SDXL)
    shutil.copy(tmp_path / "mine.latent", input_dir / "mine.latent")
    load = {"type": "latent.load", "inputs": {"latent": "mine.latent"}}
    latent: Latent = engine.run(load_and_save(load), targets=["load"]).outputs["load"]["latent"]
    assert latent.family is SDXL
    torch.testing.assert_close(latent.samples, ours())
