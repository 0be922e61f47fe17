"""Ours → ComfyUI → ours: the API format keeps what runs, the editor format keeps the picture.

The comparisons are explicit about the two things ComfyUI cannot hold: inputs only our node
has (the class table's `ours_only`, e.g. Empty Latent's optional model) and `fixed` inputs
ComfyUI computes its own way (`approximates`, e.g. prompt weighting), which come back as
ComfyUI's value and which the export report warns about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from latentloom.engine.executor import Engine
from latentloom.graph.modes import apply_modes
from latentloom.graph.workflow import Link, Workflow, parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.exporter import editor_ids, export_api, export_editor
from latentloom.interop.comfy.mapping import BY_NODE
from latentloom.registry import Registry
from tests.interop.test_export_editor import EDITED
from tests.support import WORKFLOWS, load_example

EXAMPLES = sorted(path.name for path in WORKFLOWS.glob("*.json"))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()


Executable = dict[str, tuple[str, dict[str, Any], str]]


def executable(workflow: Workflow, registry: Registry) -> Executable:
    """Each node's type, inputs (widget defaults filled in, links as dicts) and mode."""
    found: Executable = {}
    for node_id, node in workflow.nodes.items():
        spec = registry.get(node.type)
        inputs: dict[str, Any] = {}
        if spec is not None:
            inputs = {
                i.name: i.default for i in spec.inputs if i.is_widget and i.default is not None
            }
        for name, value in node.inputs.items():
            if isinstance(value, Link):
                inputs[name] = {"node": value.node, "output": value.output}
            else:
                inputs[name] = value[0] if isinstance(value, list) and len(value) == 1 else value
        found[node_id] = (node.type, inputs, node.mode)
    return found


def as_comfyui_holds_it(workflow: Workflow, registry: Registry, left_out: set[str]) -> Executable:
    """What import(export(workflow)) should equal: ComfyUI's values where it has no choice."""
    expected = executable(workflow, registry)
    for node_id in left_out:
        expected.pop(node_id, None)
    for node_type, inputs, _mode in expected.values():
        spec = registry.specs[node_type]
        for name, value in list(inputs.items()):
            if isinstance(value, dict) and value["node"] in left_out:
                # The editor format keeps the node without that link; a widget input then
                # holds its default (ComfyUI's widget shows a value where the link was).
                del inputs[name]
                declared = spec.input(name)
                if declared is not None and declared.is_widget and declared.default is not None:
                    inputs[name] = declared.default
        entry = BY_NODE.get(node_type)
        if entry is None:
            continue
        for name in entry.ours_only:
            inputs.pop(name, None)
        for name in entry.approximates:
            inputs[name] = entry.fixed[name]
    return expected


def approximated(workflow: Workflow, registry: Registry) -> set[str]:
    """Nodes whose approximated inputs differ from what ComfyUI computes."""
    found = set()
    for node_id, (node_type, inputs, _mode) in executable(workflow, registry).items():
        entry = BY_NODE.get(node_type)
        if entry and any(n in inputs and inputs[n] != entry.fixed[n] for n in entry.approximates):
            found.add(node_id)
    return found


@pytest.mark.parametrize("name", EXAMPLES)
def test_ours_to_comfyui_api_and_back_keeps_what_runs(name: str, registry: Registry) -> None:
    workflow = load_example(name)
    prompt, report = export_api(workflow, registry)
    left_out = {u.node for u in report.unexportable}
    back = parse_workflow(import_api_prompt(prompt, registry).workflow)
    runs = apply_modes(workflow, registry).workflow
    assert executable(back, registry) == as_comfyui_holds_it(runs, registry, left_out)
    warned = {w.split('"')[1] for w in report.warnings}
    assert warned == approximated(runs, registry) - left_out


@pytest.mark.parametrize(
    "name",
    [n for n in EXAMPLES if not export_api(load_example(n), default_registry())[1].unexportable],
)
def test_exported_examples_validate_after_import(name: str, engine: Engine) -> None:
    prompt, _ = export_api(load_example(name), engine.registry)
    imported = import_api_prompt(prompt, engine.registry)
    assert imported.report.unsupported == []
    assert engine.validate(parse_workflow(imported.workflow)) == []


def test_modes_are_resolved_the_way_our_executor_runs_them(registry: Registry) -> None:
    workflow = parse_workflow(EDITED)
    prompt, report = export_api(workflow, registry)
    back = parse_workflow(import_api_prompt(prompt, registry).workflow)
    runs = apply_modes(workflow, registry)
    # The bypassed sampler needs the muted prompt's conditioning: neither runs, in either tool.
    assert {s.node for s in runs.skipped} == {"9", "text"}
    assert set(back.nodes) == {"4", "picture", "empty"}
    left_out = {u.node for u in report.unexportable}
    assert left_out == {"noise"}
    expected = as_comfyui_holds_it(runs.workflow, registry, left_out | {"seed", "note"})
    assert executable(back, registry) == expected


def _editor_round_trip(
    workflow: Workflow, registry: Registry
) -> tuple[Workflow, dict[str, str], set[str]]:
    document, report = export_editor(workflow, registry)
    back = parse_workflow(import_editor_workflow(document, registry).workflow)
    ids = {ours: str(number) for ours, number in editor_ids(workflow).items()}
    return back, ids, {u.node for u in report.unexportable}


@pytest.mark.parametrize("name", EXAMPLES)
def test_ours_to_comfyui_editor_and_back_keeps_graph_and_positions(
    name: str, registry: Registry
) -> None:
    workflow = load_example(name)
    back, ids, left_out = _editor_round_trip(workflow, registry)
    expected = as_comfyui_holds_it(workflow, registry, left_out)
    assert executable(back, registry) == executable_renamed(expected, ids)
    for node_id, node in workflow.nodes.items():
        if node_id not in left_out:
            returned = back.nodes[ids[node_id]]
            assert returned.ui.get("pos") == node.ui.get("pos"), node_id
            assert returned.title == node.title, node_id


def executable_renamed(expected: Executable, ids: dict[str, str]) -> Executable:
    """The same graph under the ids ComfyUI's editor format gave its nodes."""
    renamed: Executable = {}
    for node_id, (node_type, inputs, mode) in expected.items():
        inputs = {
            name: {"node": ids[v["node"]], "output": v["output"]} if isinstance(v, dict) else v
            for name, v in inputs.items()
        }
        renamed[ids[node_id]] = (node_type, inputs, mode)
    return renamed


def test_editor_round_trip_keeps_modes_groups_reroutes_and_looks(registry: Registry) -> None:
    workflow = parse_workflow(EDITED)
    back, ids, left_out = _editor_round_trip(workflow, registry)
    assert left_out == {"noise"}
    expected = as_comfyui_holds_it(workflow, registry, left_out)
    assert executable(back, registry) == executable_renamed(expected, ids)
    for node_id, node in workflow.nodes.items():
        if node_id in left_out:
            continue
        returned = back.nodes[ids[node_id]]
        for key in ("pos", "size", "collapsed", "color", "bgcolor", "seed_control"):
            if key in node.ui:
                assert returned.ui[key] == node.ui[key], (node_id, key)
        assert "pos" in returned.ui and "size" in returned.ui
        assert returned.title == node.title
    assert back.nodes[ids["9"]].ui["reroutes"] == {"model": ids["r1"]}
    assert [(r["id"], r["pos"], r["input"]) for r in back.meta["reroutes"]] == [
        (ids["r1"], [200, 50], {"node": "4", "output": "model"})
    ]
    assert [{k: g[k] for k in ("title", "rect", "color")} for g in back.groups] == [
        {k: g[k] for k in ("title", "rect", "color")} for g in workflow.groups
    ]
    assert back.meta["view"] == workflow.meta["view"]


def test_a_comfyui_editor_file_survives_our_round_trip(registry: Registry, tmp_path: Path) -> None:
    """ComfyUI → ours → ComfyUI → ours: the second import equals the first."""
    document, _ = export_editor(parse_workflow(EDITED), registry)
    first = import_editor_workflow(document, registry).workflow
    again, _ = export_editor(parse_workflow(first), registry)
    second = import_editor_workflow(again, registry).workflow
    assert second == first


COMFY_EDITOR_WITH_UNSUPPORTED: dict[str, Any] = {
    "last_node_id": 10,
    "last_link_id": 2,
    "nodes": [
        {"id": 4, "type": "CheckpointLoaderSimple", "pos": [0, 0], "size": [315, 98], "flags": {},
         "order": 0, "mode": 0, "inputs": [],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [1], "slot_index": 0},
                     {"name": "CLIP", "type": "CLIP", "links": [], "slot_index": 1},
                     {"name": "VAE", "type": "VAE", "links": [], "slot_index": 2}],
         "properties": {"Node name for S&R": "CheckpointLoaderSimple"},
         "widgets_values": ["sd15.safetensors"]},
        {"id": 10, "type": "FreeU_V2", "pos": [400, 0], "size": [315, 130], "flags": {},
         "order": 1, "mode": 0, "inputs": [{"name": "model", "type": "MODEL", "link": 1}],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [2], "slot_index": 0}],
         "properties": {"Node name for S&R": "FreeU_V2"}, "widgets_values": [1.3, 1.4, 0.9, 0.2]},
        {"id": 5, "type": "ModelSamplingDiscrete", "pos": [800, 0], "size": [315, 82],
         "flags": {}, "order": 2, "mode": 4, "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [], "slot_index": 0}],
         "properties": {"Node name for S&R": "ModelSamplingDiscrete"},
         "widgets_values": ["eps", False]},
    ],
    "links": [[1, 4, 0, 10, 0, "MODEL"], [2, 10, 0, 5, 0, "MODEL"]],
    "groups": [], "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4,
}  # fmt: skip


def test_unsupported_classes_go_back_to_comfyui_as_the_file_had_them(registry: Registry) -> None:
    first = import_editor_workflow(COMFY_EDITOR_WITH_UNSUPPORTED, registry).workflow
    assert first["nodes"]["10"]["type"] == "comfy:FreeU_V2"
    document, report = export_editor(parse_workflow(first), registry)
    assert report.unexportable == []
    for original, exported in zip(
        COMFY_EDITOR_WITH_UNSUPPORTED["nodes"], document["nodes"], strict=True
    ):
        for key in ("id", "type", "pos", "size", "mode", "inputs", "outputs", "widgets_values"):
            assert exported[key] == original[key], (original["id"], key)
    assert document["links"] == COMFY_EDITOR_WITH_UNSUPPORTED["links"]
    # Positional widget values have no names an API prompt could use: the report says so.
    prompt, report = export_api(parse_workflow(first), registry)
    assert prompt["10"] == {
        "class_type": "FreeU_V2", "inputs": {"model": ["4", 0]}, "_meta": {"title": "FreeU_V2"}
    }  # fmt: skip
    assert report.warnings == [
        'node "10" (FreeU_V2): the file stored its widget values by position and Latentloom '
        "does not know the class's input names, so the prompt lacks them; ComfyUI will ask for them"
    ]
