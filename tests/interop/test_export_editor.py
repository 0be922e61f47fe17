"""Export to ComfyUI's editor format (0.4): ids, links, widget values, reroutes, groups, modes."""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.exporter import editor_ids, export_editor
from latentloom.registry import Registry
from tests.support import load_example


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()


def link(node: str, output: str) -> dict[str, str]:
    return {"node": node, "output": output}


def by_id(document: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {node["id"]: node for node in document["nodes"]}


def assert_links_consistent(document: dict[str, Any]) -> None:
    """Each link is named by its target's input slot and its source's output slot."""
    nodes = by_id(document)
    for link_id, source, from_slot, target, to_slot, kind in document["links"]:
        assert nodes[target]["inputs"][to_slot]["link"] == link_id
        output = nodes[source]["outputs"][from_slot]
        assert link_id in output["links"] and output["slot_index"] == from_slot
        assert kind == output["type"]
        assert nodes[source]["order"] < nodes[target]["order"]  # sources run first
    listed = [entry["link"] for n in nodes.values() for entry in n["inputs"] if entry["link"]]
    assert sorted(listed) == [row[0] for row in document["links"]]
    assert document["last_link_id"] == len(document["links"])


def test_txt2img_as_comfyui_draws_it(registry: Registry) -> None:
    workflow = load_example("txt2img.json")
    document, report = export_editor(workflow, registry)
    assert document["version"] == 0.4 and report.unexportable == []
    ids = editor_ids(workflow)
    assert ids == {name: i for i, name in enumerate(workflow.nodes, start=1)}
    assert document["last_node_id"] == 7
    nodes = by_id(document)
    sampler = nodes[ids["sampler"]]
    assert sampler["type"] == "KSampler"
    assert sampler["properties"] == {"Node name for S&R": "KSampler"}
    # ComfyUI's positional widgets: seed, its control_after_generate, then the rest.
    assert sampler["widgets_values"] == [42, "fixed", 12, 7.0, "dpmpp_2m", "karras", 1.0]
    assert [(i["name"], i["type"]) for i in sampler["inputs"]] == [
        ("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
        ("latent_image", "LATENT"),
    ]  # fmt: skip
    assert sampler["pos"] == list(workflow.nodes["sampler"].ui["pos"]) and sampler["mode"] == 0
    decode = nodes[ids["decode"]]  # ComfyUI lists samples before vae
    assert [i["name"] for i in decode["inputs"]] == ["samples", "vae"]
    assert nodes[ids["positive"]]["title"] == "Positive"
    assert "title" not in nodes[ids["checkpoint"]]
    checkpoint = nodes[ids["checkpoint"]]
    assert [(o["name"], len(o["links"])) for o in checkpoint["outputs"]] == [
        ("MODEL", 1), ("CLIP", 2), ("VAE", 1),
    ]  # fmt: skip
    assert_links_consistent(document)
    assert document["extra"] == {"ds": {"scale": 1, "offset": [0, 0]}}


EDITED = {
    "schema": "latentloom/workflow",
    "version": 2,
    "nodes": {
        "4": {"type": "loaders.checkpoint", "inputs": {"checkpoint": "a.safetensors"},
              "ui": {"pos": [10, 20], "size": [300, 100], "color": "#223", "bgcolor": "#335"}},
        "picture": {"type": "image.load", "inputs": {"image": "landscape.png"},
                    "ui": {"collapsed": True}},
        "seed": {"type": "utility.int", "title": "shared seed", "inputs": {"value": 99},
                 "ui": {"seed_control": {"value": "increment"}}},
        "9": {"type": "sampling.ksampler", "mode": "bypass",
              "inputs": {"model": link("4", "model"), "positive": link("text", "conditioning"),
                         "negative": link("text", "conditioning"), "latent": link("empty", "latent"),
                         "seed": link("seed", "value"), "steps": 3},
              "ui": {"seed_control": {"seed": "randomize"}, "reroutes": {"model": "r1"}}},
        "text": {"type": "conditioning.encode_prompt", "mode": "mute",
                 "inputs": {"clip": link("4", "clip"), "text": "x"}},
        "empty": {"type": "latent.empty", "inputs": {}},
        "note": {"type": "utility.note", "inputs": {"text": "remember"}},
        "noise": {"type": "latent.add_noise", "inputs": {"latent": link("empty", "latent")}},
    },
    "groups": [{"id": "g", "title": "Loaders", "rect": [0, 0, 400, 300], "color": "#a1309b"}],
    "meta": {"reroutes": [{"id": "r1", "pos": [200, 50], "input": link("4", "model")}],
             "view": {"offset": [-5, 12.5], "scale": 0.8}},
}  # fmt: skip


def test_modes_reroutes_values_notes_groups_and_looks(registry: Registry) -> None:
    workflow = parse_workflow(EDITED)
    document, report = export_editor(workflow, registry)
    ids = editor_ids(workflow)
    # ComfyUI-style ids keep their number; the others (reroutes too) follow the largest.
    assert ids == {"4": 4, "9": 9, "picture": 10, "seed": 11, "text": 12, "empty": 13,
                   "note": 14, "noise": 15, "r1": 16}  # fmt: skip
    nodes = by_id(document)
    assert 15 not in nodes  # Add Noise has no ComfyUI class
    assert [(u.node, u.reason) for u in report.unexportable] == [
        ("noise", "latent.add_noise: ComfyUI has no class for Add Noise")
    ]
    assert document["last_node_id"] == 16
    sampler = nodes[9]
    assert sampler["mode"] == 4 and nodes[12]["mode"] == 2  # bypass, mute kept for the canvas
    assert sampler["widgets_values"][:3] == [0, "randomize", 3]  # linked seed: its default
    seed_input = next(i for i in sampler["inputs"] if i["name"] == "seed")
    assert seed_input["widget"] == {"name": "seed"} and seed_input["type"] == "INT"
    primitive = nodes[11]
    assert primitive["type"] == "PrimitiveNode" and primitive["title"] == "shared seed"
    assert primitive["widgets_values"] == [99, "increment"]
    assert primitive["outputs"][0]["widget"] == {"name": "seed"}
    assert nodes[14]["type"] == "Note" and nodes[14]["widgets_values"] == ["remember"]
    assert nodes[10]["widgets_values"] == ["landscape.png", "image"]  # the upload button
    assert nodes[10]["flags"] == {"collapsed": True}
    assert [o["type"] for o in nodes[10]["outputs"]] == ["IMAGE", "MASK"]
    checkpoint = nodes[4]
    assert (checkpoint["pos"], checkpoint["size"]) == ([10, 20], [300, 100])
    assert (checkpoint["color"], checkpoint["bgcolor"]) == ("#223", "#335")
    reroute = nodes[16]
    assert reroute["type"] == "Reroute" and reroute["pos"] == [200, 50]
    model_link = next(i for i in sampler["inputs"] if i["name"] == "model")["link"]
    into_reroute = reroute["inputs"][0]["link"]
    rows = {row[0]: row for row in document["links"]}
    assert rows[model_link][1:3] == [16, 0] and rows[model_link][5] == "MODEL"
    assert rows[into_reroute][1:3] == [4, 0]
    assert reroute["outputs"][0]["type"] == "MODEL"
    assert_links_consistent(document)
    assert document["groups"] == [
        {"title": "Loaders", "bounding": [0, 0, 400, 300], "color": "#a1309b", "font_size": 24,
         "flags": {}}
    ]  # fmt: skip
    assert document["extra"]["ds"] == {"scale": 0.8, "offset": [-5, 12.5]}


def test_nodes_without_a_position_go_on_the_editors_grid(registry: Registry) -> None:
    workflow = Workflow.model_validate(
        {"nodes": {f"n{i}": {"type": "latent.empty", "inputs": {}} for i in range(5)}}
    )
    document, _ = export_editor(workflow, registry)
    assert [node["pos"] for node in document["nodes"]] == [
        [40, 60], [340, 60], [640, 60], [940, 60], [40, 320]
    ]  # fmt: skip
