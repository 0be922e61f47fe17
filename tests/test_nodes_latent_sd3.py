"""Empty SD3 Latent: 16-channel zeros at 1/8 scale, no family until a model samples it."""

from __future__ import annotations

from pathlib import Path

import torch

from latentloom.graph.workflow import parse_workflow
from tests.node_calls import bare_engine, builtin_registry, node_runner


def test_empty_sd3_latent_is_sixteen_channel_zeros_without_a_family(tmp_path: Path) -> None:
    call = node_runner(tmp_path)
    latent = call("latent.empty_sd3", width=1024, height=768, batch=2)["latent"]
    assert latent.samples.shape == (2, 16, 96, 128)
    assert torch.count_nonzero(latent.samples) == 0
    assert latent.family is None


def test_inputs_follow_comfyui_with_sides_in_steps_of_16() -> None:
    spec = builtin_registry().specs["latent.empty_sd3"]
    width, height, batch = spec.inputs
    assert (width.name, width.default, width.step, width.min) == ("width", 1024, 16, 16)
    assert (height.name, height.default, height.step) == ("height", 1024, 16)
    assert (batch.name, batch.default) == ("batch", 1)
    assert spec.aliases == ("EmptySD3LatentImage",)
    assert spec.category == "latent/sd3"


def test_a_side_off_the_16_grid_is_refused_with_the_nearest_allowed(tmp_path: Path) -> None:
    workflow = parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "empty": {
                    "type": "latent.empty_sd3",
                    "inputs": {"width": 1000, "height": 1024, "batch": 1},
                },
                "save": {
                    "type": "latent.save",
                    "inputs": {"latent": {"node": "empty", "output": "latent"}},
                },
            },
        }
    )
    [problem] = bare_engine(tmp_path).validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("empty", "width", "off_step")
    assert problem.message == (
        "node \"empty\" (Empty SD3 Latent) input 'width': 1000 is not a multiple of 16; "
        "use 992 or 1008"
    )
