"""ComfyUI API prompts import into workflows that validate and run; bad prompts are refused."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy import convert
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.importer import import_document
from latentloom.interop.comfy.mapping import BY_CLASS
from latentloom.interop.comfy.report import ComfyFormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"


def prompt() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "api_txt2img.json").read_text())
    return document


def test_api_prompt_imports_with_comfy_ids_and_our_names() -> None:
    result = import_api_prompt(prompt())
    nodes = result.workflow["nodes"]
    assert set(nodes) == {"3", "4", "5", "6", "7", "8", "9"}
    sampler = nodes["3"]
    assert sampler["type"] == "sampling.ksampler"
    assert sampler["inputs"]["sampler"] == "euler"
    assert sampler["inputs"]["seed"] == 156680208700286
    assert sampler["inputs"]["latent"] == {"node": "5", "output": "latent"}
    assert sampler["inputs"]["positive"] == {"node": "6", "output": "conditioning"}
    assert nodes["4"]["inputs"] == {
        "checkpoint": "tiny-sd15.safetensors",
        "prediction": "auto",
        "weight_dtype": "default",
    }
    assert nodes["5"]["inputs"] == {"width": 64, "height": 64, "batch": 1}
    assert nodes["8"]["inputs"]["vae"] == {"node": "4", "output": "vae"}
    assert nodes["6"]["inputs"]["weighting"] == "comfy"
    assert result.report.format == "comfy-api"
    assert result.report.complete
    assert len(result.report.mapped) == 7


def test_meta_titles_are_kept_unless_they_are_the_default_name() -> None:
    nodes = import_api_prompt(prompt()).workflow["nodes"]
    assert nodes["6"]["title"] == "Positive prompt"
    assert "title" not in nodes["7"]  # "CLIP Text Encode (Prompt)" is only the class's name
    assert "title" not in nodes["3"]


def test_nodes_are_laid_out_left_to_right_by_link_depth() -> None:
    nodes = import_api_prompt(prompt()).workflow["nodes"]
    x = {node_id: node["ui"]["pos"][0] for node_id, node in nodes.items()}
    assert x["4"] < x["6"] < x["3"] < x["8"] < x["9"]
    assert len({tuple(node["ui"]["pos"]) for node in nodes.values()}) == len(nodes)


def test_api_prompt_validates_and_runs_on_the_tiny_checkpoint(engine: Engine) -> None:
    workflow = parse_workflow(import_document(prompt()).workflow)
    assert engine.validate(workflow) == []
    result = engine.run(workflow)
    assert result.reports["9"]["images"][0]["filename"].startswith("ComfyUI")


def test_unsupported_class_is_kept_with_its_links_and_refused_by_name(engine: Engine) -> None:
    document = prompt()
    document["10"] = {
        "class_type": "CustomCLIPSkip",  # a custom node's class: nothing in our table
        "inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]},
    }
    document["6"]["inputs"]["clip"] = ["10", 0]
    result = import_api_prompt(document)
    placeholder = result.workflow["nodes"]["10"]
    assert placeholder["type"] == "comfy:CustomCLIPSkip"
    assert placeholder["inputs"] == {
        "stop_at_clip_layer": -2,
        "clip": {"node": "4", "output": "clip"},
    }
    assert placeholder["ui"]["comfy"] == {
        "class_type": "CustomCLIPSkip",
        "inputs": [{"name": "stop_at_clip_layer", "type": "INT"}, {"name": "clip", "type": "CLIP"}],
        "outputs": [{"name": "0", "type": "CLIP"}],
    }
    assert result.workflow["nodes"]["6"]["inputs"]["clip"] == {"node": "10", "output": "0"}
    assert [(u.node, u.comfy_class, u.reason) for u in result.report.unsupported] == [
        ("10", "CustomCLIPSkip", "no Latentloom node for this class yet")
    ]
    problems = engine.validate(parse_workflow(result.workflow))
    assert [(p.node, p.code) for p in problems] == [("10", "unsupported_class")]
    assert "CustomCLIPSkip" in problems[0].message


MASKED = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "landscape.png"}},
    "2": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}},
    "3": {
        "class_type": "MaskComposite",
        "inputs": {"destination": ["2", 0], "source": ["1", 1]},
    },
}


def test_load_image_mask_output_links_by_name() -> None:
    result = import_api_prompt(MASKED)
    assert result.workflow["nodes"]["1"]["type"] == "image.load"
    assert result.workflow["nodes"]["3"]["inputs"]["source"] == {"node": "1", "output": "mask"}
    assert result.report.unsupported == []


def test_an_output_we_do_not_produce_makes_the_source_a_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No class in the table lacks an output today; a table whose Load Image had no mask does.
    without_mask = replace(BY_CLASS["LoadImage"], outputs=("image", None))
    monkeypatch.setattr(convert, "BY_CLASS", {**BY_CLASS, "LoadImage": without_mask})
    result = import_api_prompt(MASKED)
    assert result.workflow["nodes"]["1"]["type"] == "comfy:LoadImage"
    assert result.workflow["nodes"]["3"]["inputs"]["source"] == {"node": "1", "output": "1"}
    reasons = {u.node: u.reason for u in result.report.unsupported}
    assert reasons["1"] == "output 1 is used, which Latentloom does not produce yet"


def test_load_image_using_only_its_image_output_maps_without_its_upload_button() -> None:
    document = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "landscape.png", "upload": "image"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    result = import_api_prompt(document)
    assert result.workflow["nodes"]["1"]["type"] == "image.load"
    assert result.workflow["nodes"]["1"]["inputs"] == {"image": "landscape.png"}
    assert result.workflow["nodes"]["2"]["inputs"]["images"] == {"node": "1", "output": "image"}


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"crop": "center"}, "input 'crop' is 'center'; Latentloom only supports 'disabled'"),
        (
            {"crop": ["9", 0]},
            "input 'crop' is linked; Latentloom only supports the value(s) 'disabled'",
        ),
        ({"crop": "disabled", "sharpen": 1}, "input 'sharpen' has no Latentloom counterpart"),
    ],
)
def test_inputs_we_cannot_honour_make_a_placeholder_with_the_reason(
    inputs: dict[str, Any], reason: str
) -> None:
    document = {
        "9": {"class_type": "PrimitiveString", "inputs": {"value": "center"}},
        "1": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "2": {
            "class_type": "LatentUpscale",
            "inputs": {
                "samples": ["1", 0],
                "upscale_method": "bilinear",
                "width": 128,
                "height": 128,
            }
            | inputs,
        },
    }
    result = import_api_prompt(document)
    assert result.workflow["nodes"]["2"]["type"] == "comfy:LatentUpscale"
    assert [u.reason for u in result.report.unsupported] == [reason]


def test_neutral_inputs_holding_their_neutral_value_are_dropped() -> None:
    document = {
        "1": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "2": {
            "class_type": "LatentUpscale",
            "inputs": {
                "samples": ["1", 0],
                "upscale_method": "bilinear",
                "width": 128,
                "height": 96,
                "crop": "disabled",
            },
        },
    }
    node = import_api_prompt(document).workflow["nodes"]["2"]
    assert node == {
        "type": "latent.upscale",
        "inputs": {
            "latent": {"node": "1", "output": "latent"},
            "method": "bilinear",
            "width": 128,
            "height": 96,
        },
        "ui": node["ui"],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update({"3": 7}), 'prompt["3"]: expected a node object, got 7 (int)'),
        (
            lambda d: d["3"].pop("class_type"),
            'prompt["3"].class_type: expected a class name, got null',
        ),
        (
            lambda d: d["3"].update(inputs=[1]),
            'prompt["3"].inputs: expected an object, got a list',
        ),
        (
            lambda d: d["8"]["inputs"].update(vae=["12", 2]),
            'prompt["8"].inputs.vae: links to node "12", which the prompt does not have',
        ),
        (
            lambda d: d["8"]["inputs"].update(vae=["4", -1]),
            'prompt["8"].inputs.vae: a link\'s output index must be a whole number ≥ 0, got -1 (int)',
        ),
        (
            lambda d: d["8"]["inputs"].update(vae=["4", 7]),
            'prompt["8"].inputs.vae: links to output 7 of node "4" (CheckpointLoaderSimple), '
            "which has 3 output(s)",
        ),
        (
            lambda d: d["3"]["inputs"].update(seed={"value": 5}),
            'prompt["3"].inputs.seed: expected a number, string, boolean or list of them, '
            "got an object",
        ),
        (
            lambda d: d["3"].update(_meta={"title": 5}),
            'prompt["3"]._meta.title: expected a string, got 5 (int)',
        ),
    ],
)
def test_malformed_prompts_are_refused_naming_where(change: Any, message: str) -> None:
    document = copy.deepcopy(prompt())
    change(document)
    with pytest.raises(ComfyFormatError) as raised:
        import_document(document)
    assert str(raised.value) == message


def test_an_empty_prompt_is_neither_format() -> None:
    with pytest.raises(ComfyFormatError, match="got an empty object"):
        import_document({})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "prompt: expected an object of nodes by id, got a list"),
        (
            {"1": {"class_type": "SaveImage", "inputs": {}, "_meta": "x"}},
            "prompt[\"1\"]._meta: expected an object, got 'x' (str)",
        ),
    ],
)
def test_prompt_shapes_the_reader_refuses(document: Any, message: str) -> None:
    with pytest.raises(ComfyFormatError) as raised:
        import_api_prompt(document)
    assert str(raised.value) == message
