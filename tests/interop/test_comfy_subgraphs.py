"""ComfyUI subgraphs (`definitions.subgraphs`) import as our version-3 subgraphs.

The fixture is a hand-written 0.4 editor file (array links at the top level, object links
inside the definition, as ComfyUI writes them) whose KSampler and VAE Decode sit in a
"Render" subgraph, the seed promoted to a widget on the instance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy.importer import import_document

DEFINITION = "9e2d7c1a-5b3f-4e8d-a6c2-1f0e9d8c7b6a"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "comfy" / "editor_04_subgraph.json"


def comfy_file() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())  # type: ignore[no-any-return]


def link(node: str, output: str) -> dict[str, str]:
    return {"node": node, "output": output}


def test_a_comfy_subgraph_becomes_a_definition_and_an_instance() -> None:
    result = import_document(comfy_file())
    workflow = result.workflow
    assert workflow["version"] == 3
    assert list(workflow["nodes"]) == ["4", "6", "7", "5", "12", "9"]
    assert workflow["nodes"]["12"] == {
        "type": f"subgraph:{DEFINITION}",
        "inputs": {
            "model": link("4", "model"),
            "positive": link("6", "conditioning"),
            "negative": link("7", "conditioning"),
            "latent_image": link("5", "latent"),
            "vae": link("4", "vae"),
            "seed": 7,  # the instance's widget value, not the inner node's 42
        },
        "ui": {"pos": [900, 200], "size": [280, 160]},
    }
    assert workflow["nodes"]["9"]["inputs"]["images"] == link("12", "IMAGE")
    definition = workflow["subgraphs"][DEFINITION]
    assert definition["name"] == "Render"
    assert definition["inputs"] == [
        {"name": "model", "type": "MODEL", "targets": [{"node": "1", "input": "model"}]},
        {
            "name": "positive",
            "type": "CONDITIONING",
            "targets": [{"node": "1", "input": "positive"}],
        },
        {
            "name": "negative",
            "type": "CONDITIONING",
            "targets": [{"node": "1", "input": "negative"}],
        },
        {"name": "latent_image", "type": "LATENT", "targets": [{"node": "1", "input": "latent"}]},
        {"name": "vae", "type": "VAE", "targets": [{"node": "2", "input": "vae"}]},
        {"name": "seed", "type": "INT", "targets": [{"node": "1", "input": "seed"}]},
    ]
    assert definition["outputs"] == [
        {"name": "IMAGE", "type": "IMAGE", "node": "2", "output": "image"}
    ]
    # Inner nodes keep the definition's own positions and hold no instance values.
    assert definition["nodes"]["1"]["inputs"] == {
        "steps": 2,
        "cfg": 7.0,
        "sampler": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
    }
    assert definition["nodes"]["1"]["ui"]["pos"] == [0, 0]
    assert definition["nodes"]["2"] == {
        "type": "image.vae_decode",
        "inputs": {"latent": link("1", "latent")},
        "ui": {"pos": [400, 0], "size": [210, 46]},
    }
    assert "groups" not in workflow
    assert result.report.notes == ['subgraph "Render" (node "12") kept as a subgraph']
    parse_workflow(workflow)  # a valid version-3 document


def test_the_subgraph_runs_to_the_same_image_as_its_flattened_form(engine: Engine) -> None:
    kept = parse_workflow(import_document(comfy_file()).workflow)
    flat = parse_workflow(import_document(comfy_file(), subgraphs="flatten").workflow)
    assert "12" in kept.nodes and "12" not in flat.nodes
    assert engine.validate(kept) == [] and engine.validate(flat) == []
    # Both run the decode as "12:2" (ComfyUI's flattened id and ours agree).
    first = engine.run(kept, targets=["12:2"]).outputs["12:2"]["image"]
    second = engine.run(flat, targets=["12:2"]).outputs["12:2"]["image"]
    assert first.shape == (1, 64, 64, 3)
    assert torch.equal(first, second)


def test_an_instance_keeps_its_own_mode_and_inner_nodes_theirs() -> None:
    document = comfy_file()
    document["nodes"][4]["mode"] = 4  # bypass the instance
    workflow = import_document(document).workflow
    assert workflow["nodes"]["12"]["mode"] == "bypass"
    assert "mode" not in workflow["subgraphs"][DEFINITION]["nodes"]["1"]


def test_a_subgraph_our_format_cannot_hold_is_flattened_saying_why() -> None:
    document = comfy_file()
    definition = document["definitions"]["subgraphs"][0]
    # The output now comes straight from the subgraph's VAE input: no inner node feeds it.
    output_link = definition["links"][-1]
    output_link.update(origin_id=-10, origin_slot=4, type="VAE")
    result = import_document(document)
    assert "subgraphs" not in result.workflow
    assert "12:1" in result.workflow["nodes"]
    assert result.report.notes[-1] == (
        'subgraphs were flattened: output "IMAGE" of subgraph node "12" is fed straight '
        "from an input or a value"
    )
