"""Bounds on workflow documents and JSON bodies: each refused whole, with a pinned message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from latentloom.graph.document_bounds import (
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_NODES,
    MAX_STRING_LENGTH,
    DocumentBoundsError,
    dump_json,
    load_json,
)
from latentloom.graph.workflow import WorkflowFormatError, load_workflow_file, parse_workflow
from tests.support import load_example


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def document(**changes: Any) -> dict[str, Any]:
    return {**load_example("txt2img.json").to_json(), **changes}


def refusal(document: dict[str, Any]) -> str:
    with pytest.raises(WorkflowFormatError) as refused:
        parse_workflow(document)
    return str(refused.value)


def test_the_bounds_are_the_documented_numbers() -> None:
    assert (MAX_DEPTH, MAX_NODES, MAX_ID_LENGTH, MAX_STRING_LENGTH) == (64, 5_000, 200, 100_000)


def test_a_300_deep_meta_is_refused_naming_the_depth_limit() -> None:
    assert refusal(document(meta=nested(300))) == (
        "the workflow passes a bound: meta.a.a.a.a.a...: nested more than 64 levels deep; "
        "documents nest at most 64 levels"
    )
    parse_workflow(document(meta=nested(MAX_DEPTH - 2)))  # within the bound


@pytest.mark.parametrize(
    ("where", "value", "shown"),
    [("meta", {"x": float("nan")}, "meta.x: nan"), ("groups", [float("inf")], "groups.0: inf")],
)
def test_nan_and_infinity_anywhere_are_refused(where: str, value: Any, shown: str) -> None:
    assert refusal(document(**{where: value})) == (
        f"the workflow passes a bound: {shown} is not a finite number (JSON has no NaN or Infinity)"
    )


def test_nan_in_an_input_is_refused_before_validation() -> None:
    workflow = document()
    workflow["nodes"]["sampler"]["inputs"]["cfg"] = float("-inf")
    assert refusal(workflow) == (
        "the workflow passes a bound: nodes.sampler.inputs.cfg: -inf is not a finite number "
        "(JSON has no NaN or Infinity)"
    )


def test_long_strings_are_refused() -> None:
    workflow = document(meta={"notes": "x" * (MAX_STRING_LENGTH + 1)})
    assert refusal(workflow) == (
        "the workflow passes a bound: meta.notes: a string of 100,001 characters; "
        "the most is 100,000"
    )


def test_node_count_is_bounded() -> None:
    note = {"type": "utility.note", "inputs": {"text": ""}}
    workflow = document(nodes={str(i): note for i in range(MAX_NODES + 1)})
    assert refusal(workflow) == (
        "the workflow passes a bound: nodes: the workflow has 5,001 nodes; the most is 5,000"
    )


def test_ids_and_names_are_bounded() -> None:
    long_id = "n" * (MAX_ID_LENGTH + 1)
    workflow = document()
    workflow["nodes"][long_id] = workflow["nodes"].pop("save")
    assert refusal(workflow) == (
        "the workflow passes a bound: nodes: node id 'nnnnnnnnnnnnnnnnnnnn'...: 201 characters; "
        "ids and names are at most 200"
    )
    workflow = document()
    workflow["nodes"]["save"]["inputs"]["images"]["output"] = "o" * 300
    assert refusal(workflow) == (
        "the workflow passes a bound: nodes.save.inputs.images.output: 300 characters; "
        "ids and names are at most 200"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": NaN}', "NaN is not a number JSON allows (no NaN or Infinity)"),
        (b'{"a": -Infinity}', "-Infinity is not a number JSON allows (no NaN or Infinity)"),
        (b'{"a": 1e999}', "1e999 is too large for a number (it overflows to Infinity)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply; documents nest at most 64 levels"),
        (
            json.dumps(nested(65)).encode(),
            "a.a.a.a.a.a...: nested more than 64 levels deep; documents nest at most 64 levels",
        ),
        (
            b'{"a": 1' + b"0" * 5000 + b"}",
            "not valid JSON: Exceeds the limit (4300 digits) "
            "for integer string conversion: value has 5001 digits; use "
            "sys.set_int_max_str_digits() to increase the limit",
        ),
        (b'{"a": ', "not valid JSON: Expecting value: line 1 column 7 (char 6)"),
    ],
)
def test_json_bodies_are_read_under_the_bounds(body: bytes, message: str) -> None:
    with pytest.raises(DocumentBoundsError) as refused:
        load_json(body)
    assert str(refused.value) == message


def test_workflow_files_are_read_under_the_bounds(tmp_path: Any) -> None:
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(document(meta={"x": 1.0})).replace("1.0", "NaN"))
    with pytest.raises(WorkflowFormatError) as refused:
        load_workflow_file(path)
    assert str(refused.value) == (f"{path}: NaN is not a number JSON allows (no NaN or Infinity)")


@pytest.mark.parametrize(
    "document",
    [
        {"a": [1, 2.5, -0.0, 1e300, True, None], "b": {"c": 'x\n"y" ü 猫 \U0001f600'}},
        {"nodes": {str(i): {"type": "t", "inputs": {"v": i / 7}} for i in range(50)}},
        [],
        "plain",
    ],
)
def test_dump_json_writes_what_json_dumps_writes(document: Any) -> None:
    # Ledger hashes and stored texts must not depend on which encoder made them.
    assert dump_json(document) == json.dumps(document)
