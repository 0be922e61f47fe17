"""The executor with node modes: what runs, what is skipped and why, and what the cache sees.

Fast graphs use the arith pack (integers and sums); the image tests run the tiny checkpoint.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from latentloom.engine.events import NodeCached, NodeStarted
from latentloom.engine.executor import Engine
from latentloom.graph.validate import WorkflowInvalid
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.images import read_png_workflow
from tests.support import WORKFLOWS, make_arith_engine, make_engine


@pytest.fixture
def arith(tmp_path: Path) -> Engine:
    return make_arith_engine(tmp_path)


def workflow(nodes: dict[str, Any], **modes: str) -> Workflow:
    nodes = copy.deepcopy(nodes)
    for node_id, mode in modes.items():
        nodes[node_id]["mode"] = mode
    return parse_workflow({"schema": "latentloom/workflow", "version": 2, "nodes": nodes})


def link(node: str, output: str = "value") -> dict[str, str]:
    return {"node": node, "output": output}


# one=1, two=2 -> sum=a+b -> out; double=sum+sum -> out2
SUMS: dict[str, Any] = {
    "one": {"type": "arith.number", "inputs": {"value": 1}},
    "two": {"type": "arith.number", "inputs": {"value": 2}},
    "sum": {"type": "arith.add", "inputs": {"a": link("one"), "b": link("two")}},
    "out": {"type": "arith.sink", "inputs": {"value": link("sum")}},
    "double": {"type": "arith.add", "inputs": {"a": link("sum"), "b": link("sum")}},
    "out2": {"type": "arith.sink", "inputs": {"value": link("double")}},
}


def skipped(result: Any) -> list[tuple[str, str]]:
    return [(entry.node, entry.reason) for entry in result.skipped]


def test_every_node_runs_by_default(arith: Engine) -> None:
    result = arith.run(workflow(SUMS))
    assert result.executed == ["one", "two", "sum", "out", "double", "out2"]
    assert result.reports == {"out": {"values": [3]}, "out2": {"values": [6]}}
    assert result.skipped == []


def test_a_muted_node_does_not_run_and_its_optional_consumers_see_nothing(
    arith: Engine,
) -> None:
    result = arith.run(workflow(SUMS, two="mute"))
    assert result.executed == ["one", "sum", "out", "double", "out2"]
    assert result.reports == {"out": {"values": [1]}, "out2": {"values": [2]}}  # b: default 0
    assert skipped(result) == [("two", "muted")]


def test_a_muted_output_node_is_skipped_and_what_only_it_needed_is_not_run(
    arith: Engine,
) -> None:
    result = arith.run(workflow(SUMS, out2="mute"))
    assert result.executed == ["one", "two", "sum", "out"]
    assert result.reports == {"out": {"values": [3]}}
    assert skipped(result) == [("out2", "muted")]


def test_a_bypassed_node_passes_its_first_linked_input_of_the_output_type(
    arith: Engine,
) -> None:
    result = arith.run(workflow(SUMS, sum="bypass"))  # out <- one; double <- one + one
    assert result.executed == ["one", "out", "double", "out2"]
    assert result.reports == {"out": {"values": [1]}, "out2": {"values": [2]}}
    assert skipped(result) == [("sum", "bypassed")]


def test_bypass_with_the_first_input_unlinked_passes_the_next_linked_one(
    arith: Engine,
) -> None:
    nodes = copy.deepcopy(SUMS)
    nodes["sum"]["inputs"]["a"] = 40
    result = arith.run(workflow(nodes, sum="bypass"))
    assert result.reports == {"out": {"values": [2]}, "out2": {"values": [4]}}


def test_muting_every_output_is_refused_before_anything_runs(arith: Engine) -> None:
    events: list[object] = []
    with pytest.raises(WorkflowInvalid) as error:
        arith.run(workflow(SUMS, out="mute", out2="bypass"), on_event=events.append)
    assert [p.code for p in error.value.problems] == ["nothing_to_run"]
    assert events == []


def test_skipped_nodes_send_no_events(arith: Engine) -> None:
    events: list[Any] = []
    arith.run(workflow(SUMS, sum="bypass"), on_event=events.append)
    started = [event.node for event in events if isinstance(event, NodeStarted)]
    assert started == ["one", "out", "double", "out2"]


def test_targets_that_modes_skip_are_left_out(arith: Engine) -> None:
    result = arith.run(workflow(SUMS, out="mute"), targets=["out", "out2"])
    assert sorted(result.outputs) == ["out2"]
    assert result.executed == ["one", "two", "sum", "double", "out2"]


def test_bypass_then_back_to_run_serves_everything_upstream_from_the_cache(
    arith: Engine,
) -> None:
    arith.run(workflow(SUMS))
    bypassed = arith.run(workflow(SUMS, sum="bypass"))
    assert bypassed.cached == ["one"]
    assert bypassed.executed == ["out", "double", "out2"]  # they read "one" now: new keys
    events: list[object] = []
    back = arith.run(workflow(SUMS), on_event=events.append)
    assert back.executed == []
    assert len(events) == 6 and all(isinstance(e, NodeCached) for e in events)


def test_bypassing_gives_the_same_cache_keys_as_wiring_around_by_hand(arith: Engine) -> None:
    arith.run(workflow(SUMS, double="bypass"))
    by_hand = copy.deepcopy(SUMS)
    del by_hand["double"]
    by_hand["out2"]["inputs"]["value"] = link("sum")
    again = arith.run(workflow(by_hand))
    assert again.executed == []
    assert again.reports == {"out": {"values": [3]}, "out2": {"values": [3]}}


def test_muting_changes_keys_only_downstream_of_the_muted_node(arith: Engine) -> None:
    arith.run(workflow(SUMS))
    result = arith.run(workflow(SUMS, two="mute"))
    assert result.cached == ["one"]
    assert result.executed == ["sum", "out", "double", "out2"]


# The tiny checkpoint: a LoRA bypassed, a second Save Image branch muted.


def lora_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((WORKFLOWS / "lora.json").read_text())
    document["nodes"]["sampler"]["inputs"]["steps"] = 4
    document["nodes"]["latent"]["inputs"].update(width=64, height=64)
    return document


def saved_pixels(engine: Engine, result: Any, node: str = "save") -> np.ndarray:
    entry = result.reports[node]["images"][0]
    path = engine.settings.output_dir / entry["subfolder"] / entry["filename"]
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_a_bypassed_lora_gives_the_image_of_the_graph_without_it(
    models_dir: Path, tmp_path: Path, input_dir: Path
) -> None:
    bypassed = lora_document()
    bypassed["nodes"]["lora"]["mode"] = "bypass"
    without = lora_document()
    del without["nodes"]["lora"]
    for node in without["nodes"].values():
        for name, value in node["inputs"].items():
            if isinstance(value, dict) and value["node"] == "lora":
                node["inputs"][name] = {"node": "checkpoint", "output": value["output"]}

    first = make_engine(models_dir, tmp_path / "bypassed", input_dir)
    result = first.run(parse_workflow(bypassed))
    assert "lora" not in result.executed and skipped(result) == [("lora", "bypassed")]
    second = make_engine(models_dir, tmp_path / "without", input_dir)  # nothing cached
    reference = second.run(parse_workflow(without))
    assert np.array_equal(saved_pixels(first, result), saved_pixels(second, reference))
    # ...and the LoRA does change the picture, so the comparison could have failed.
    with_lora = first.run(parse_workflow(lora_document()))
    assert "lora" in with_lora.executed
    assert not np.array_equal(saved_pixels(first, with_lora), saved_pixels(first, result))
    # Same keys as the hand-wired graph: nothing runs again.
    assert first.run(parse_workflow(without)).executed == []


def test_a_muted_second_branch_saves_one_image(engine: Engine) -> None:
    document = lora_document()
    document["nodes"]["upscale"] = {
        "type": "latent.upscale",
        "inputs": {"latent": {"node": "sampler", "output": "latent"}, "width": 128, "height": 128},
    }
    document["nodes"]["decode_b"] = {
        "type": "image.vae_decode",
        "mode": "mute",
        "inputs": {
            "vae": {"node": "checkpoint", "output": "vae"},
            "latent": {"node": "upscale", "output": "latent"},
        },
    }
    document["nodes"]["save_b"] = {
        "type": "image.save",
        "inputs": {"images": {"node": "decode_b", "output": "image"}, "filename_prefix": "b"},
    }
    written = parse_workflow(document)
    result = engine.run(written)
    assert skipped(result) == [("decode_b", "muted"), ("save_b", "depends_on_muted")]
    assert "upscale" not in result.executed and "save" in result.executed
    assert [node for node, report in result.reports.items() if "images" in report] == ["save"]
    assert len(list(engine.settings.output_dir.rglob("*.png"))) == 1
    # The saved image carries the graph as written, modes and all.
    entry = result.reports["save"]["images"][0]
    saved = read_png_workflow(engine.settings.output_dir / entry["filename"])
    assert saved == written.to_json() and saved["nodes"]["decode_b"]["mode"] == "mute"
