"""The IP-Adapter nodes through the engine on the tiny files: the example's graph with weight 0
gives the plain picture byte for byte, a weight changes it, each loader reports what it found,
CLIP Vision Encode gives the tower's three outputs, and bad values are refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from latentloom.engine.executor import Engine, NodeExecutionError
from latentloom.graph.workflow import Workflow, parse_workflow
from tests.node_calls import node_runner
from tests.support import WORKFLOWS, load_example

STEPS = 3  # a short run keeps the tests quick; the example itself runs in test_examples


def example_graph() -> Workflow:
    return load_example("ip_adapter.json").with_input("sampler", "steps", STEPS)


def saved_pixels(engine: Engine, workflow: Workflow) -> bytes:
    result = engine.run(workflow)
    [entry] = result.reports["save"]["images"]
    path = engine.settings.output_dir / entry["subfolder"] / entry["filename"]
    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


def without_adapter() -> Workflow:
    """The example with the sampler reading the checkpoint's model directly."""
    document: dict[str, Any] = json.loads((WORKFLOWS / "ip_adapter.json").read_text())
    document["nodes"]["sampler"]["inputs"]["model"] = {"node": "checkpoint", "output": "model"}
    document["nodes"]["sampler"]["inputs"]["steps"] = STEPS
    for name in ("apply", "ipadapter", "clip_vision", "image"):
        del document["nodes"][name]
    return parse_workflow(document)


def test_weight_zero_is_the_plain_picture_and_a_weight_changes_it(engine: Engine) -> None:
    example = example_graph()
    plain = saved_pixels(engine, without_adapter())
    assert saved_pixels(engine, example.with_input("apply", "weight", 0.0)) == plain
    assert saved_pixels(engine, example) != plain
    late = example.with_input("apply", "start_at", 0.5)
    assert saved_pixels(engine, late) not in (plain, saved_pixels(engine, example))


def test_loaders_report_what_they_found(engine: Engine) -> None:
    result = engine.run(example_graph())
    assert result.reports["clip_vision"]["detection"] == [
        {"tower": "custom (width 32)", "image_size": 224}
    ]
    assert result.reports["ipadapter"]["detection"] == [{"kind": "base", "layers": 4}]


def test_the_plus_adapter_runs_in_the_example(engine: Engine) -> None:
    example = example_graph()
    plus = example.with_input(
        "ipadapter", "ipadapter_file", "tiny-ip-adapter-plus-sd15.safetensors"
    )
    result = engine.run(plus)
    assert result.reports["ipadapter"]["detection"] == [{"kind": "plus", "layers": 4}]
    assert saved_pixels(engine, plus) != saved_pixels(engine, example)


def test_start_after_end_is_refused_by_the_node(engine: Engine) -> None:
    example = example_graph()
    wrong = example.with_input("apply", "start_at", 0.9).with_input("apply", "end_at", 0.2)
    with pytest.raises(NodeExecutionError, match=r"start_at \(0.9\) is after end_at \(0.2\)"):
        engine.run(wrong)


def test_an_unknown_adapter_file_fails_validation(engine: Engine) -> None:
    example = example_graph()
    problems = engine.validate(
        example.with_input("ipadapter", "ipadapter_file", "nope.safetensors")
    )
    assert [(p.node, p.input) for p in problems] == [("ipadapter", "ipadapter_file")]
    assert "tiny-ip-adapter-sd15.safetensors" in problems[0].message


def test_clip_vision_encode_gives_the_three_outputs(models_dir: Path, tmp_path: Path) -> None:
    call = node_runner(models_dir)
    clip_vision = call("clip_vision.loader", clip_name="tiny-clip-vision.safetensors")[
        "clip_vision"
    ]
    images = torch.rand(2, 64, 96, 3, generator=torch.Generator().manual_seed(0))
    out = call("clip_vision.encode", clip_vision=clip_vision, image=images, crop="none")
    encoded = out["clip_vision_output"]
    assert encoded.image_embeds.shape == (2, 16)
    assert encoded.last_hidden_state.shape == (2, 257, 32)
    assert encoded.penultimate_hidden_states.shape == (2, 257, 32)
    center = call("clip_vision.encode", clip_vision=clip_vision, image=images, crop="center")
    assert not torch.equal(center["clip_vision_output"].image_embeds, encoded.image_embeds)
    with pytest.raises(ValueError, match="crop 'left' is not one of: center, none"):
        call("clip_vision.encode", clip_vision=clip_vision, image=images, crop="left")
