"""The workflow document: parsing, versions, JSON Schema, and every example file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentloom.graph.workflow import (
    CURRENT_VERSION,
    Link,
    WorkflowFormatError,
    load_workflow_file,
    parse_workflow,
    workflow_json_schema,
)

WORKFLOWS = sorted((Path(__file__).parents[2] / "workflows").glob("*.json"))


def doc(**overrides: object) -> dict:
    return {"schema": "latentloom/workflow", "version": 1, "nodes": {}, **overrides}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_example_round_trips_through_the_model(path: Path) -> None:
    original = json.loads(path.read_text())
    assert load_workflow_file(path).to_json() == original


def test_links_and_literals_are_told_apart() -> None:
    workflow = parse_workflow(
        doc(
            nodes={
                "a": {
                    "type": "x.y",
                    "inputs": {
                        "link": {"node": "b", "output": "latent"},
                        "int": 3,
                        "float": 0.5,
                        "flag": True,
                        "list": [0.0, 0.5],
                    },
                }
            }
        )
    )
    inputs = workflow.nodes["a"].inputs
    assert inputs["link"] == Link(node="b", output="latent")
    assert [type(inputs[k]) for k in ("int", "float", "flag")] == [int, float, bool]
    assert inputs["list"] == [0.0, 0.5]


def test_newer_version_is_refused_whole() -> None:
    with pytest.raises(WorkflowFormatError) as error:
        parse_workflow(doc(version=CURRENT_VERSION + 1))
    assert str(error.value) == (
        "workflow version 4 was written by a newer Latentloom; this one reads versions up to 3"
    )


def test_other_documents_are_refused_with_the_reason() -> None:
    with pytest.raises(WorkflowFormatError) as error:
        parse_workflow({"1": {"class_type": "KSampler", "inputs": {}}})
    assert str(error.value) == (
        'not a Latentloom workflow: expected "schema": "latentloom/workflow", got None'
    )
    with pytest.raises(WorkflowFormatError) as error:
        parse_workflow(
            doc(nodes={"a": {"type": "x.y", "inputs": {"bad": {"node": "b"}}, "colour": 1}})
        )
    message = str(error.value)
    assert message.startswith("invalid workflow document:")
    assert "nodes.a.colour: Extra inputs are not permitted" in message


def test_json_schema_describes_the_document() -> None:
    schema = workflow_json_schema()
    assert set(schema["required"]) >= {"nodes"}
    assert "schema" in schema["properties"] and "version" in schema["properties"]
    assert "Link" in schema["$defs"] and "WorkflowNode" in schema["$defs"]
