"""Subgraphs: the version-3 format, its structural checks, flattening, and running.

The fixture pair in tests/fixtures/subgraphs/ (a document and its expected flat form) is
also what the editor's Vitest flattens, so both sides are held to the same answer.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from latentloom.engine.executor import Engine
from latentloom.graph import subgraphs
from latentloom.graph.workflow import WorkflowFormatError, parse_workflow
from tests.support import REPO, make_arith_engine, make_engine

FIXTURES = REPO / "tests" / "fixtures" / "subgraphs"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def link(node: str, output: str = "value") -> dict[str, str]:
    return {"node": node, "output": output}


# add3(x) = x + 1 + 2, wrapped twice: "outer" holds an "inner" instance.
ARITH: dict[str, Any] = {
    "schema": "latentloom/workflow",
    "version": 3,
    "nodes": {
        "five": {"type": "arith.number", "inputs": {"value": 5}},
        "box": {"type": "subgraph:outer", "inputs": {"x": link("five")}},
        "out": {"type": "arith.sink", "inputs": {"value": link("box", "sum")}},
    },
    "subgraphs": {
        "inner": {
            "name": "Add one",
            "inputs": [{"name": "x", "type": "INT", "targets": [{"node": "add", "input": "a"}]}],
            "outputs": [{"name": "sum", "type": "INT", "node": "add", "output": "value"}],
            "nodes": {"add": {"type": "arith.add", "inputs": {"b": 1}}},
        },
        "outer": {
            "name": "Add three",
            "revision": 2,
            "inputs": [{"name": "x", "type": "INT", "targets": [{"node": "one", "input": "x"}]}],
            "outputs": [{"name": "sum", "type": "INT", "node": "add", "output": "value"}],
            "nodes": {
                "one": {"type": "subgraph:inner", "inputs": {}},
                "add": {"type": "arith.add", "inputs": {"a": link("one", "sum"), "b": 2}},
            },
        },
    },
}


def test_the_fixture_flattens_to_its_expected_flat_form() -> None:
    workflow = parse_workflow(fixture("txt2img_render.json"))
    flat = subgraphs.flatten(workflow).to_json()
    expected = fixture("txt2img_render.flat.json")
    assert flat["nodes"] == expected["nodes"]
    assert list(flat["nodes"]) == [
        "checkpoint",
        "positive",
        "negative",
        "render:latent",
        "render:sampler",
        "render:decode",
        "save",
    ]


def test_a_document_with_subgraphs_round_trips_as_version_3() -> None:
    document = fixture("txt2img_render.json")
    assert parse_workflow(document).to_json() == document


def test_a_version_2_document_migrates_and_is_written_as_version_2() -> None:
    document = {"schema": "latentloom/workflow", "version": 2, "nodes": {}}
    workflow = parse_workflow(document)
    assert workflow.version == 3 and workflow.subgraphs == {}
    assert workflow.to_json() == {**document, "groups": [], "meta": {}}


def test_nested_subgraphs_flatten_with_nested_namespaces() -> None:
    flat = subgraphs.flatten(parse_workflow(ARITH)).to_json()["nodes"]
    assert flat == {
        "five": {"type": "arith.number", "inputs": {"value": 5}, "ui": {}},
        "box:one:add": {"type": "arith.add", "inputs": {"b": 1, "a": link("five")}, "ui": {}},
        "box:add": {"type": "arith.add", "inputs": {"a": link("box:one:add"), "b": 2}, "ui": {}},
        "out": {"type": "arith.sink", "inputs": {"value": link("box:add")}, "ui": {}},
    }


def test_nested_subgraphs_run_and_an_instance_mode_reaches_its_inner_nodes(
    tmp_path: Path,
) -> None:
    engine = make_arith_engine(tmp_path)
    result = engine.run(parse_workflow(ARITH))
    assert result.reports == {"out": {"values": [8]}}
    assert result.executed == ["five", "box:one:add", "box:add", "out"]
    muted = copy.deepcopy(ARITH)
    muted["nodes"]["box"]["mode"] = "mute"
    skipped = engine.run(parse_workflow(muted)).skipped
    assert [(entry.node, entry.reason) for entry in skipped][:2] == [
        ("box:one:add", "muted"),
        ("box:add", "muted"),
    ]


def test_an_input_the_instance_leaves_out_keeps_the_inner_value(tmp_path: Path) -> None:
    document = copy.deepcopy(ARITH)
    document["subgraphs"]["inner"]["nodes"]["add"]["inputs"]["a"] = 10
    del document["nodes"]["box"]["inputs"]["x"]
    result = make_arith_engine(tmp_path).run(parse_workflow(document))
    assert result.reports == {"out": {"values": [13]}}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["nodes"]["box"].update(type="subgraph:missing"),
            "nodes.box.type: names subgraph 'missing', which the workflow does not define "
            "(it defines ['inner', 'outer']); add its definition under \"subgraphs\" or "
            "replace the node",
        ),
        (
            lambda d: d["nodes"]["box"]["inputs"].update(y=1),
            "nodes.box.inputs.y: subgraph 'outer' has no input 'y' (its inputs: ['x'])",
        ),
        (
            lambda d: d["nodes"]["out"]["inputs"].update(value=link("box", "total")),
            "nodes.out.inputs.value: links to output 'total' of subgraph node 'box', "
            "which has outputs ['sum']",
        ),
        (
            lambda d: d["subgraphs"]["inner"]["outputs"][0].update(node="gone"),
            "subgraphs.inner.outputs.sum: comes from node 'gone', which the subgraph does "
            "not have (it has ['add'])",
        ),
        (
            lambda d: d["subgraphs"]["inner"]["nodes"].update(
                loop={"type": "subgraph:outer", "inputs": {}}
            ),
            "subgraphs.inner: subgraphs inner -> outer -> inner contain each other",
        ),
    ],
)
def test_structural_problems_are_refused_whole_with_the_reason(edit: Any, message: str) -> None:
    document = copy.deepcopy(ARITH)
    edit(document)
    with pytest.raises(WorkflowFormatError) as error:
        parse_workflow(document)
    assert message in str(error.value).split("\n  ")


def saved_pixels(engine: Engine, result: Any) -> np.ndarray:
    entry = result.reports["save"]["images"][0]
    path = engine.settings.output_dir / entry["subfolder"] / entry["filename"]
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def small(document: dict[str, Any], sampler: str) -> dict[str, Any]:
    document = copy.deepcopy(document)
    nodes = document.get("subgraphs", {}).get("render", {}).get("nodes", document["nodes"])
    nodes[sampler]["inputs"]["steps"] = 3
    nodes["latent"]["inputs"].update(width=64, height=64)
    return document


def test_a_workflow_with_a_subgraph_gives_the_image_of_its_flat_form(
    models_dir: Path, tmp_path: Path, input_dir: Path
) -> None:
    with_subgraph = small(fixture("txt2img_render.json"), "sampler")
    # The hand-wired original the subgraph was made from (a frozen copy of the example).
    flat = small(fixture("txt2img.json"), "sampler")
    first = make_engine(models_dir, tmp_path / "a", input_dir)
    result = first.run(parse_workflow(with_subgraph))
    assert {"render:latent", "render:sampler", "render:decode"} <= set(result.executed)
    second = make_engine(models_dir, tmp_path / "b", input_dir)  # nothing cached
    reference = second.run(parse_workflow(flat))
    assert np.array_equal(saved_pixels(first, result), saved_pixels(second, reference))
    # The cache keys ignore ids: the hand-wired graph needs nothing run again.
    assert first.run(parse_workflow(flat)).executed == []
