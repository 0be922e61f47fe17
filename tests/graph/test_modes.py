"""Node modes as a graph rewrite: what is removed, what is rewired, and why.

The graphs are the built-in nodes' (real specs with required and optional inputs); nothing
runs here. Running them is in tests/engine/test_executor_modes.py.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from latentloom.graph.modes import ModesApplied, apply_modes
from latentloom.graph.validate import validate
from latentloom.graph.workflow import Link, Workflow, parse_workflow
from latentloom.registry import Registry, build_registry
from tests.support import WORKFLOWS

LORA_DOCUMENT: dict[str, Any] = json.loads((WORKFLOWS / "lora.json").read_text())


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(entry_point_packs=False)


def lora_graph(**modes: str) -> dict[str, Any]:
    """workflows/lora.json (checkpoint -> lora -> prompts, latent, sampler -> decode -> save)."""
    document = copy.deepcopy(LORA_DOCUMENT)
    for node_id, mode in modes.items():
        document["nodes"][node_id]["mode"] = mode
    return document


def applied(document: dict[str, Any], registry: Registry) -> ModesApplied:
    return apply_modes(parse_workflow(document), registry)


def link(node: str, output: str) -> Link:
    return Link(node=node, output=output)


def no_choices(folder: str) -> list[str]:
    return ["tiny-sd15.safetensors", "tiny-lora-sd15.safetensors"]


def test_a_graph_where_every_node_runs_is_left_as_it_is(registry: Registry) -> None:
    workflow = parse_workflow(lora_graph())
    result = apply_modes(workflow, registry)
    assert result.workflow is workflow and result.skipped == ()


def test_muting_removes_the_node_and_what_requires_it_and_unconnects_optional_inputs(
    registry: Registry,
) -> None:
    result = applied(lora_graph(lora="mute"), registry)
    assert [(s.node, s.reason) for s in result.skipped] == [
        ("lora", "muted"),
        ("positive", "depends_on_muted"),
        ("negative", "depends_on_muted"),
        ("sampler", "depends_on_muted"),
        ("decode", "depends_on_muted"),
        ("save", "depends_on_muted"),
    ]
    messages = {s.node: s.message for s in result.skipped}
    assert messages["lora"] == 'node "lora" is muted'
    assert messages["positive"] == (
        'node "positive" cannot run: its required input \'clip\' came from node "lora", '
        "which is muted"
    )
    assert messages["decode"] == (
        'node "decode" cannot run: its required input \'latent\' came from node "sampler", '
        "which does not run"
    )
    # Empty Latent's model input is optional: it stays, unconnected.
    assert sorted(result.workflow.nodes) == ["checkpoint", "latent"]
    assert "model" not in result.workflow.nodes["latent"].inputs
    assert result.workflow.nodes["latent"].inputs["width"] == 256


def test_bypassing_a_lora_is_the_same_graph_as_wiring_around_it_by_hand(
    registry: Registry,
) -> None:
    result = applied(lora_graph(lora="bypass"), registry)
    assert [(s.node, s.reason) for s in result.skipped] == [("lora", "bypassed")]
    by_hand = lora_graph()
    del by_hand["nodes"]["lora"]
    for node in by_hand["nodes"].values():
        for name, value in node["inputs"].items():
            if isinstance(value, dict) and value["node"] == "lora":
                node["inputs"][name] = {"node": "checkpoint", "output": value["output"]}
    assert result.workflow.nodes == parse_workflow(by_hand).nodes
    assert result.workflow.nodes["sampler"].inputs["model"] == link("checkpoint", "model")
    assert result.workflow.nodes["positive"].inputs["clip"] == link("checkpoint", "clip")


def test_chains_of_bypassed_nodes_resolve_transitively(registry: Registry) -> None:
    document = lora_graph(lora="bypass")
    second = copy.deepcopy(document["nodes"]["lora"])
    second["inputs"]["model"] = {"node": "lora", "output": "model"}
    second["inputs"]["clip"] = {"node": "lora", "output": "clip"}
    document["nodes"]["lora2"] = second
    document["nodes"]["sampler"]["inputs"]["model"] = {"node": "lora2", "output": "model"}
    result = applied(document, registry)
    assert result.workflow.nodes["sampler"].inputs["model"] == link("checkpoint", "model")
    assert [s.node for s in result.skipped] == ["lora", "lora2"]


def test_a_bypassed_output_with_no_input_of_its_type_behaves_as_muted(
    registry: Registry,
) -> None:
    result = applied(lora_graph(decode="bypass"), registry)  # VAE, LATENT in; IMAGE out
    assert [(s.node, s.reason) for s in result.skipped] == [
        ("decode", "bypassed"),
        ("save", "depends_on_muted"),
    ]
    assert result.skipped[1].message == (
        'node "save" cannot run: its required input \'images\' came from node "decode", '
        "which is bypassed and has no linked input of the type of its output 'image' "
        "to pass through"
    )


def test_a_bypass_that_reaches_a_muted_node_loses_the_link(registry: Registry) -> None:
    result = applied(lora_graph(lora="bypass", checkpoint="mute"), registry)
    messages = {s.node: s.message for s in result.skipped}
    assert messages["sampler"] == (
        'node "sampler" cannot run: its required input \'model\' came from node "checkpoint", '
        "which is muted"
    )
    assert sorted(result.workflow.nodes) == ["latent"]


def test_only_linked_inputs_pass_through(registry: Registry) -> None:
    """Bypassed Latent Upscale passes its LATENT input; a literal never stands in for a link."""
    document = lora_graph()
    document["nodes"]["upscale"] = {
        "type": "latent.upscale",
        "mode": "bypass",
        "inputs": {"latent": {"node": "sampler", "output": "latent"}, "width": 512},
    }
    document["nodes"]["decode"]["inputs"]["latent"] = {"node": "upscale", "output": "latent"}
    result = applied(document, registry)
    assert result.workflow.nodes["decode"].inputs["latent"] == link("sampler", "latent")


def test_all_outputs_muted_is_one_problem_and_muted_nodes_are_not_validated(
    registry: Registry,
) -> None:
    document = lora_graph(save="mute", sampler="mute")
    document["nodes"]["sampler"]["inputs"]["steps"] = -5  # muted: ComfyUI doesn't check it
    problems = validate(parse_workflow(document), registry, no_choices)
    assert [(p.node, p.code) for p in problems] == [(None, "nothing_to_run")]


def test_an_unknown_input_linked_to_a_muted_node_is_still_reported(registry: Registry) -> None:
    document = lora_graph()
    document["nodes"]["lora2"] = dict(copy.deepcopy(document["nodes"]["lora"]), mode="mute")
    document["nodes"]["sampler"]["inputs"]["modle"] = {"node": "lora2", "output": "model"}
    problems = validate(parse_workflow(document), registry, no_choices)
    assert [(p.node, p.input, p.code) for p in problems] == [("sampler", "modle", "unknown_input")]


def test_a_cycle_through_a_bypassed_node_is_still_a_cycle(registry: Registry) -> None:
    document = lora_graph()
    document["nodes"]["upscale"] = {
        "type": "latent.upscale",
        "mode": "bypass",
        "inputs": {"latent": {"node": "sampler", "output": "latent"}},
    }
    document["nodes"]["sampler"]["inputs"]["latent"] = {"node": "upscale", "output": "latent"}
    problems = validate(parse_workflow(document), registry, no_choices)
    assert [p.model_dump() for p in problems] == [
        {
            "node": "sampler",
            "input": None,
            "code": "cycle",
            "message": 'nodes "sampler" -> "sampler" form a cycle',
        }
    ]


PLACEHOLDER_SHARPEN: dict[str, Any] = {
    "type": "comfy:ImageSharpen",
    "inputs": {"image": {"node": "decode", "output": "image"}, "sharpen_radius": 1},
    "ui": {
        "comfy": {
            "class_type": "ImageSharpen",
            "inputs": [
                {"name": "image", "type": "IMAGE"},
                {"name": "sharpen_radius", "type": "INT"},
            ],
            "outputs": [{"name": "IMAGE", "type": "IMAGE"}],
            "widgets_values": [1, 1.0, 0.5],
        }
    },
}


def with_sharpen(mode: str) -> dict[str, Any]:
    """lora.json with an unsupported ComfyUI class between decode and save."""
    document = lora_graph()
    document["nodes"]["12"] = dict(copy.deepcopy(PLACEHOLDER_SHARPEN), mode=mode)
    document["nodes"]["save"]["inputs"]["images"] = {"node": "12", "output": "0"}
    return document


def test_a_placeholder_is_one_problem_naming_its_class(registry: Registry) -> None:
    problems = validate(parse_workflow(with_sharpen("run")), registry, no_choices)
    assert [p.model_dump() for p in problems] == [
        {
            "node": "12",
            "input": None,
            "code": "unsupported_class",
            "message": "node \"12\": ComfyUI class 'ImageSharpen' is not supported by "
            "Latentloom yet; it was kept as a placeholder with its inputs and links",
        }
    ]


def test_a_bypassed_placeholder_passes_its_input_through_by_the_files_types(
    registry: Registry,
) -> None:
    workflow = parse_workflow(with_sharpen("bypass"))
    result = apply_modes(workflow, registry)
    assert result.workflow.nodes["save"].inputs["images"] == link("decode", "image")
    assert validate(workflow, registry, no_choices) == []


def test_a_muted_placeholder_does_not_block_the_other_outputs(registry: Registry) -> None:
    document = with_sharpen("mute")
    document["nodes"]["preview"] = {
        "type": "image.preview",
        "inputs": {"images": {"node": "decode", "output": "image"}},
    }
    workflow = parse_workflow(document)
    assert validate(workflow, registry, no_choices) == []
    assert [(s.node, s.reason) for s in apply_modes(workflow, registry).skipped] == [
        ("save", "depends_on_muted"),
        ("12", "muted"),
    ]


def test_a_bypassed_placeholder_without_socket_types_behaves_as_muted(
    registry: Registry,
) -> None:
    document = with_sharpen("bypass")
    document["nodes"]["12"]["ui"] = {"comfy": {"class_type": "ImageSharpen", "outputs": "?"}}
    result = applied(document, registry)
    assert [(s.node, s.reason) for s in result.skipped] == [
        ("save", "depends_on_muted"),
        ("12", "bypassed"),
    ]


def test_a_placeholder_that_loses_an_input_is_still_reported(registry: Registry) -> None:
    """Without a spec nobody knows which inputs it requires; ComfyUI refuses it too."""
    document = with_sharpen("run")
    document["nodes"]["decode"]["mode"] = "mute"
    workflow = parse_workflow(document)
    result = apply_modes(workflow, registry)
    assert "image" not in result.workflow.nodes["12"].inputs
    assert [p.code for p in validate(workflow, registry, no_choices)] == ["unsupported_class"]


def test_the_rewrite_does_not_touch_the_workflow_it_was_given(registry: Registry) -> None:
    workflow: Workflow = parse_workflow(lora_graph(lora="bypass", decode="mute"))
    before = workflow.to_json()
    apply_modes(workflow, registry)
    assert workflow.to_json() == before


def test_a_long_chain_listed_backwards_is_removed_whole(registry: Registry) -> None:
    """Removal follows consumers, not passes over the node list: 5000 nodes, one muted."""
    nodes: dict[str, Any] = {
        f"n{i}": {
            "type": "latent.upscale",
            "inputs": {"latent": {"node": f"n{i - 1}", "output": "latent"}},
        }
        for i in range(4999, 0, -1)
    }
    nodes["n0"] = {"type": "latent.empty", "mode": "mute"}
    workflow = parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})
    result = apply_modes(workflow, registry)
    assert result.workflow.nodes == {}
    assert len(result.skipped) == 5000
    assert result.skipped[0].message == (
        'node "n4999" cannot run: its required input \'latent\' came from node "n4998", '
        "which does not run"
    )
