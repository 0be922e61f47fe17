"""The upscale and tiled VAE nodes through the engine: loading from upscale_models/ (and A1111's
ESRGAN/), a budget-shrunk tile, the MAX_SIDE bound, estimates, and the temporal inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.engine.file_sizes import FolderFiles
from latentloom.graph.budget import CostBudget, estimate
from latentloom.graph.cost import Batch, CostQuery, Value
from latentloom.graph.validate import WorkflowInvalid
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.models.folders import ModelFolders
from latentloom.registry import build_registry
from latentloom.tiled_costs import scale_from_name, upscale_with_model_cost
from tests.support import load_example

MIB = 2**20


def tiled_upscale(tile: int = 32) -> Workflow:
    return load_example("tiled_upscale.json").with_input("upscale", "tile_size", tile)


def test_load_upscale_model_reports_what_spandrel_found(engine: Engine) -> None:
    result = engine.run(load_example("tiled_upscale.json"))
    assert result.reports["upscaler"] == {
        "detection": [
            {"architecture": "ESRGAN", "scale": 4, "tags": ["8nf", "1nb"], "parameters": 226_099}
        ]
    }
    assert tuple(result.outputs["save"]) == ()
    assert "upscale" not in result.reports  # the asked tile fitted: nothing to say


def test_a1111_esrgan_folders_are_listed(tmp_path: Path, models_dir: Path) -> None:
    source = models_dir / "upscale_models" / "tiny-esrgan-x4.safetensors"
    for folder in ("ESRGAN", "RealESRGAN"):
        (tmp_path / folder).mkdir()
        shutil.copy(source, tmp_path / folder / f"{folder}-x4.safetensors")
    (tmp_path / "ESRGAN" / "old.pth").write_bytes(b"listed, refused when loaded")
    assert ModelFolders.of([tmp_path]).list("upscale_models") == [
        "ESRGAN-x4.safetensors",
        "RealESRGAN-x4.safetensors",
        "old.pth",
    ]


def test_the_upscaled_image_is_four_times_the_size(engine: Engine) -> None:
    result = engine.run(tiled_upscale(), targets=["shrink", "upscale"])
    assert tuple(result.outputs["shrink"]["image"].shape) == (1, 64, 64, 3)
    assert tuple(result.outputs["upscale"]["image"].shape) == (1, 256, 256, 3)


def test_a_small_budget_shrinks_the_tile_and_says_so(engine: Engine) -> None:
    # 64² -> 256²: one 64-pixel tile needs 1 KiB x 256² = 64 MiB; 32-pixel tiles 16 MiB.
    workflow = tiled_upscale(tile=64)
    engine.budget = CostBudget(40 * MIB, None, 100_000, compute_bytes=4)
    assert engine.validate(workflow) == []
    result = engine.run(workflow, targets=["upscale"])
    assert result.reports["upscale"] == {
        "tiled": [{"tile_size": 32, "asked": 64, "reason": "the budget's memory"}]
    }
    files = FolderFiles(engine.settings.folders)
    registry = build_registry()
    job = estimate(workflow, registry, files, compute_bytes=4, budget=engine.budget, one_pool=True)
    assert job.costs["upscale"].working_bytes == 1024 * 128 * 128


def test_an_upscale_past_the_largest_side_is_refused_before_running(engine: Engine) -> None:
    document = tiled_upscale().to_json()
    document["nodes"]["shrink"] = {
        "type": "image.scale",
        "inputs": {
            "image": {"node": "image", "output": "image"},
            "upscale_method": "nearest-exact",
            "width": 3072,
            "height": 3072,
            "crop": "disabled",
        },
    }
    workflow = parse_workflow(document)  # 3072² x 4 = 12,288² > 8,192
    with pytest.raises(WorkflowInvalid) as refused:
        engine.run(workflow)
    assert [(p.node, p.input, p.code, p.message) for p in refused.value.problems] == [
        (
            "upscale",
            "image",
            "over_limit",
            "node \"upscale\" (Upscale Image (using Model)) input 'image': a 3072x3072 image "
            "upscaled 4x is 12288x12288; the largest side allowed is 8,192: scale the image "
            "down first",
        )
    ]


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("4x-UltraSharp.safetensors", 4),
        ("RealESRGAN_x2plus.safetensors", 2),
        ("sub/1x_ITF_SkinDiffDetail.safetensors", 1),
        ("8x_NMKD-Superscale.safetensors", 8),
        ("tiny-esrgan-x4.safetensors", 4),
        ("SwinIR_large.safetensors", 4),  # says nothing: assumed 4x
        ("x264-restore.safetensors", 4),  # "x264" is not a scale
    ],
)
def test_the_estimate_reads_the_scale_from_the_file_name(name: str, scale: int) -> None:
    assert scale_from_name(name) == scale


def test_upscale_cost_counts_output_tile_and_blend_buffer() -> None:
    query = CostQuery(
        "upscale",
        {"tile_size": 512, "overlap": 32},
        {"image": Batch(1024, 1024, 1, "load"), "upscale_model": Value(4)},
        files=None,  # type: ignore[arg-type]
        compute_bytes=4,
    )
    cost = upscale_with_model_cost(query)
    assert cost.outputs == {"image": Batch(4096, 4096, 1, "upscale")}
    assert cost.working_bytes == 1024 * 2048 * 2048  # one 512² tile at 4x: 4 GiB in fp32
    assert cost.host_working_bytes == 2 * 4096 * 4096 * 12


def tiled_vae_graph(temporal_size: int, temporal_overlap: int) -> Workflow:
    document = load_example("txt2img.json").to_json()
    nodes = document["nodes"]
    nodes["decode"] = {
        "type": "image.vae_decode_tiled",
        "inputs": {
            "vae": {"node": "checkpoint", "output": "vae"},
            "latent": {"node": "sampler", "output": "latent"},
            "tile_size": 128,
            "overlap": 32,
            "temporal_size": temporal_size,
            "temporal_overlap": temporal_overlap,
        },
    }
    nodes["encode"] = {
        "type": "image.vae_encode_tiled",
        "inputs": {
            "vae": {"node": "checkpoint", "output": "vae"},
            "image": {"node": "decode", "output": "image"},
            "tile_size": 128,
            "overlap": 32,
            "temporal_size": temporal_size,
            "temporal_overlap": temporal_overlap,
        },
    }
    return parse_workflow(document)


def test_tiled_vae_nodes_round_trip_and_ignore_the_temporal_inputs(engine: Engine) -> None:
    first = engine.run(tiled_vae_graph(64, 8), targets=["decode", "encode"]).outputs
    other = engine.run(tiled_vae_graph(16, 4), targets=["decode", "encode"]).outputs
    assert tuple(first["decode"]["image"].shape) == (1, 256, 256, 3)
    assert torch.equal(first["decode"]["image"], other["decode"]["image"])
    latent = first["encode"]["latent"]
    assert tuple(latent.samples.shape) == (1, 4, 32, 32) and latent.family.name == "sd15"
    assert torch.equal(latent.samples, other["encode"]["latent"].samples)
