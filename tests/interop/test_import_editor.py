"""ComfyUI editor workflows (0.4 and 1) import with their layout, editor-only nodes and modes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.importer import import_document
from latentloom.interop.comfy.report import ComfyFormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def v04() -> dict[str, Any]:
    return fixture("editor_v04_txt2img.json")


def node_of(document: dict[str, Any], node_id: int) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in document["nodes"] if n["id"] == node_id)
    return found


def test_v04_keeps_positions_sizes_titles_colours_groups_and_view() -> None:
    result = import_document(v04())
    workflow = result.workflow
    positive, negative = workflow["nodes"]["6"], workflow["nodes"]["7"]
    assert positive["title"] == "Positive"
    assert positive["ui"]["pos"] == [415, 186]
    assert positive["ui"]["size"] == [422, 164]
    assert (positive["ui"]["color"], positive["ui"]["bgcolor"]) == ("#232", "#353")
    assert negative["ui"]["collapsed"] is True
    assert "collapsed" not in positive["ui"]
    assert workflow["groups"] == [
        {
            "id": "group_1",
            "title": "Prompts",
            "rect": [400, 110, 460, 480],
            "color": "#3f789e",
            "font_size": 24,
        }
    ]
    assert workflow["meta"]["view"] == {"offset": [120.5, -40.25], "scale": 0.8264}
    assert result.report.format == "comfy-editor"
    assert result.report.complete


def test_positional_widgets_become_named_inputs() -> None:
    nodes = import_document(v04()).workflow["nodes"]
    assert nodes["5"]["inputs"] == {"width": 64, "height": 64, "batch": 1}
    sampler = nodes["3"]["inputs"]
    # [seed, control, steps, cfg, sampler_name, scheduler, denoise]: seed and sampler_name are
    # inputs fed by primitives, yet still hold their places in widgets_values.
    assert (sampler["steps"], sampler["cfg"], sampler["scheduler"], sampler["denoise"]) == (
        2,
        8,
        "karras",
        1,
    )
    assert nodes["3"]["ui"]["seed_control"] == {"seed": "randomize"}


def test_reroute_node_becomes_our_reroute_with_links_to_the_real_source() -> None:
    workflow = import_document(v04()).workflow
    assert workflow["meta"]["reroutes"] == [
        {"id": "10", "pos": [380, 300], "type": "CLIP", "input": {"node": "4", "output": "clip"}}
    ]
    for node_id in ("6", "7"):
        node = workflow["nodes"][node_id]
        assert node["inputs"]["clip"] == {"node": "4", "output": "clip"}
        assert node["ui"]["reroutes"] == {"clip": "10"}
    assert "10" not in workflow["nodes"]


def test_chained_reroutes_point_at_each_other() -> None:
    document = v04()
    second = copy.deepcopy(node_of(document, 10))
    second.update(id=20, pos=[390, 420])
    second["inputs"][0]["link"] = 13
    node_of(document, 7)["inputs"][0]["link"] = 14
    document["links"] = [link for link in document["links"] if link[0] != 5]
    document["links"] += [[13, 10, 0, 20, 0, "CLIP"], [14, 20, 0, 7, 0, "CLIP"]]
    document["nodes"].append(second)
    workflow = import_document(document).workflow
    routes = {r["id"]: r for r in workflow["meta"]["reroutes"]}
    assert routes["20"]["input"] == {"node": "10", "output": "out"}
    assert workflow["nodes"]["7"]["inputs"]["clip"] == {"node": "4", "output": "clip"}
    assert workflow["nodes"]["7"]["ui"]["reroutes"] == {"clip": "20"}


def test_primitive_int_becomes_a_value_node_with_its_seed_control() -> None:
    result = import_document(v04())
    nodes = result.workflow["nodes"]
    assert nodes["11"] == {
        "type": "utility.int",
        "inputs": {"value": 7},
        "title": "Shared seed",
        "ui": {"pos": [600, 40], "size": [210, 82], "seed_control": {"value": "increment"}},
    }
    assert nodes["3"]["inputs"]["seed"] == {"node": "11", "output": "value"}


def test_primitive_combo_is_folded_into_its_targets_with_a_note() -> None:
    result = import_document(v04())
    assert result.workflow["nodes"]["3"]["inputs"]["sampler"] == "dpmpp_2m"
    assert "12" not in result.workflow["nodes"]
    assert result.report.notes == [
        'Primitive node "12" (COMBO) was folded into its targets as the value '
        "'dpmpp_2m': sampler_name of \"3\""
    ]


@pytest.mark.parametrize(
    ("kind", "value", "node_type"),
    [
        ("FLOAT", 6.5, "utility.float"),
        ("STRING", "a cat", "utility.string"),
        ("BOOLEAN", True, "utility.boolean"),
    ],
)
def test_primitives_of_each_widget_type_become_value_nodes(
    kind: str, value: Any, node_type: str
) -> None:
    document = v04()
    primitive = node_of(document, 11)
    primitive["outputs"][0].update(name=kind, type=kind)
    primitive["widgets_values"] = [value]
    nodes = import_document(document).workflow["nodes"]
    assert nodes["11"]["type"] == node_type
    assert nodes["11"]["inputs"] == {"value": value}
    assert "seed_control" not in nodes["11"]["ui"]


def test_an_unconnected_primitive_is_left_out_with_a_note() -> None:
    document = v04()
    node_of(document, 3)["inputs"][4]["link"] = None
    document["links"] = [link for link in document["links"] if link[0] != 11]
    result = import_document(document)
    assert "11" not in result.workflow["nodes"]
    assert result.workflow["nodes"]["3"]["inputs"]["seed"] == 156680208700286
    assert 'Primitive node "11" feeds nothing; it was left out' in result.report.notes


def test_note_becomes_our_note_node() -> None:
    note = import_document(v04()).workflow["nodes"]["13"]
    assert note["type"] == "utility.note"
    assert note["inputs"] == {"text": "The seed comes from the primitive above the sampler."}
    assert note["ui"]["color"] == "#432"


def test_v04_validates_and_runs_without_running_the_note(engine: Engine) -> None:
    workflow = parse_workflow(import_document(v04()).workflow)
    assert engine.validate(workflow) == []
    result = engine.run(workflow)
    assert "13" not in result.executed
    assert {"11", "3", "9"} <= set(result.executed)
    assert result.reports["9"]["images"]


@pytest.mark.parametrize(
    ("stored", "mode"),
    [
        ("fixed", "fixed"),
        ("increment", "increment"),
        ("decrement", "decrement"),
        ("randomize", "randomize"),
        (True, "randomize"),
        (False, "fixed"),
    ],
)
def test_control_after_generate_values(stored: Any, mode: str) -> None:
    document = v04()
    node_of(document, 3)["widgets_values"][1] = stored
    node = import_document(document).workflow["nodes"]["3"]
    assert node["ui"]["seed_control"] == {"seed": mode}
    assert node["inputs"]["steps"] == 2


def test_files_from_before_seed_controls_have_none() -> None:
    document = v04()
    sampler = node_of(document, 3)
    sampler["widgets_values"] = [5, 3, 8, "euler", "normal", 1]
    sampler["inputs"] = sampler["inputs"][:4]
    document["links"] = [link for link in document["links"] if link[0] not in (11, 12)]
    document["nodes"] = [n for n in document["nodes"] if n["id"] not in (11, 12)]
    node = import_document(document).workflow["nodes"]["3"]
    assert node["inputs"]["seed"] == 5
    assert node["inputs"]["steps"] == 3
    assert "seed_control" not in node["ui"]


def test_a_bad_control_value_is_refused_naming_its_position() -> None:
    document = v04()
    node_of(document, 3)["widgets_values"][1] = "sometimes"
    with pytest.raises(ComfyFormatError) as raised:
        import_document(document)
    index = next(i for i, n in enumerate(document["nodes"]) if n["id"] == 3)
    assert str(raised.value) == (
        f"nodes[{index}].widgets_values[1]: expected a control_after_generate value "
        "(fixed, increment, decrement, randomize, true or false), got 'sometimes' (str)"
    )


def test_load_image_upload_value_is_consumed() -> None:
    document = {
        "nodes": [
            {
                "id": 1,
                "type": "LoadImage",
                "pos": [0, 0],
                "mode": 0,
                "outputs": [
                    {"name": "IMAGE", "type": "IMAGE", "links": [1]},
                    {"name": "MASK", "type": "MASK", "links": None},
                ],
                "widgets_values": ["landscape.png", "image"],
            },
            {
                "id": 2,
                "type": "PreviewImage",
                "pos": [300, 0],
                "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
        "version": 0.4,
    }
    nodes = import_document(document).workflow["nodes"]
    assert nodes["1"]["type"] == "image.load"
    assert nodes["1"]["inputs"] == {"image": "landscape.png"}


def test_widget_values_may_be_stored_by_name() -> None:
    document = v04()
    node_of(document, 5)["widgets_values"] = {"width": 128, "height": 96, "batch_size": 2}
    assert import_document(document).workflow["nodes"]["5"]["inputs"] == {
        "width": 128,
        "height": 96,
        "batch": 2,
    }


def test_a_widget_count_no_version_of_the_class_stores_makes_a_placeholder() -> None:
    document = v04()
    node_of(document, 5)["widgets_values"] = [64, 64, 1, "extra"]
    result = import_document(document)
    node = result.workflow["nodes"]["5"]
    assert node["type"] == "comfy:EmptyLatentImage"
    assert node["ui"]["comfy"]["widgets_values"] == [64, 64, 1, "extra"]
    assert node["ui"]["comfy"]["outputs"] == [{"name": "LATENT", "type": "LATENT"}]
    assert [u.reason for u in result.report.unsupported] == [
        "widgets_values has 4 value(s); EmptyLatentImage stores 3: width, height, batch_size"
    ]


def test_unsupported_class_keeps_named_widget_values_and_links(engine: Engine) -> None:
    document = v04()
    document["nodes"].append(
        {
            "id": 30,
            "type": "CustomCLIPSkip",  # a custom node's class: nothing in our table
            "pos": [200, 300],
            "size": [200, 60],
            "mode": 0,
            "inputs": [
                {"name": "clip", "type": "CLIP", "link": 30},
                {
                    "name": "stop_at_clip_layer",
                    "type": "INT",
                    "widget": {"name": "stop_at_clip_layer"},
                    "link": None,
                },
            ],
            "outputs": [{"name": "CLIP", "type": "CLIP", "links": [31]}],
            "widgets_values": [-2],
        }
    )
    document["links"] = [link for link in document["links"] if link[0] != 3]
    document["links"] += [[30, 4, 1, 30, 0, "CLIP"], [31, 30, 0, 10, 0, "CLIP"]]
    node_of(document, 10)["inputs"][0]["link"] = 31
    result = import_document(document)
    placeholder = result.workflow["nodes"]["30"]
    assert placeholder["type"] == "comfy:CustomCLIPSkip"
    assert placeholder["inputs"] == {
        "stop_at_clip_layer": -2,
        "clip": {"node": "4", "output": "clip"},
    }
    assert placeholder["ui"]["comfy"]["inputs"] == [
        {"name": "clip", "type": "CLIP"},
        {"name": "stop_at_clip_layer", "type": "INT"},
    ]
    assert result.workflow["meta"]["reroutes"][0]["input"] == {"node": "30", "output": "0"}
    assert result.workflow["nodes"]["6"]["inputs"]["clip"] == {"node": "30", "output": "0"}
    problems = engine.validate(parse_workflow(result.workflow))
    assert [(p.node, p.code) for p in problems] == [("30", "unsupported_class")]


@pytest.mark.parametrize(("comfy", "ours"), [(0, None), (1, None), (2, "mute"), (4, "bypass")])
def test_node_modes(comfy: int, ours: str | None) -> None:
    document = v04()
    node_of(document, 8)["mode"] = comfy
    node = import_document(document).workflow["nodes"]["8"]
    assert node.get("mode") == ours


def test_subgraph_is_flattened_with_instance_ids_and_its_widget_value() -> None:
    result = import_document(fixture("editor_v1_subgraph.json"), subgraphs="flatten")
    nodes = result.workflow["nodes"]
    assert "10" not in nodes
    positive, negative = nodes["10:1"], nodes["10:2"]
    assert positive["inputs"]["text"] == "a red apple on a wooden table"
    assert positive["inputs"]["clip"] == {"node": "4", "output": "clip"}
    assert negative["inputs"]["text"] == "blurry, watermark"
    assert negative["title"] == "Negative"
    assert nodes["3"]["inputs"]["positive"] == {"node": "10:1", "output": "conditioning"}
    assert nodes["3"]["inputs"]["negative"] == {"node": "10:2", "output": "conditioning"}
    # Inner positions move to the instance's place; the instance becomes a group around them.
    assert positive["ui"]["pos"] == [400, 200]
    assert negative["ui"]["pos"] == [400, 450]
    group = result.workflow["groups"][1]
    assert group["title"] == "Prompts"
    assert group["subgraph"] == {"id": "a3f4c2d1-7e6b-4a8f-9c1d-2b3e4f5a6b7c", "instance": "10"}
    x, y, width, height = group["rect"]
    assert x < 400 and y < 200 and x + width > 800 and y + height > 650
    assert result.report.notes == [
        'subgraph "Prompts" (node "10") was flattened: its nodes have ids "10:<inner id>" '
        "and a group frames them"
    ]


def test_v1_links_native_reroutes_and_groups() -> None:
    workflow = import_document(fixture("editor_v1_subgraph.json")).workflow
    assert workflow["nodes"]["9"]["inputs"]["images"] == {"node": "8", "output": "image"}
    assert workflow["nodes"]["9"]["ui"]["reroutes"] == {"images": "reroute_1"}
    assert workflow["meta"]["reroutes"] == [
        {"id": "reroute_1", "pos": [1420, 160], "input": {"node": "8", "output": "image"}}
    ]
    assert workflow["groups"][0]["title"] == "Sampling"
    assert workflow["nodes"]["3"]["inputs"]["sampler"] == "euler_ancestral"
    assert workflow["nodes"]["3"]["ui"]["seed_control"] == {"seed": "fixed"}


def test_v1_subgraph_validates_and_runs(engine: Engine) -> None:
    workflow = parse_workflow(import_document(fixture("editor_v1_subgraph.json")).workflow)
    assert engine.validate(workflow) == []
    result = engine.run(workflow)
    assert {"10:1", "10:2", "3", "8", "9"} <= set(result.executed)
    assert result.reports["9"]["images"]


def test_nested_subgraphs_flatten_to_nested_ids() -> None:
    document = fixture("editor_v1_subgraph.json")
    inner = document["definitions"]["subgraphs"][0]
    outer = copy.deepcopy(inner)
    outer.update(id="b0000000-0000-4000-8000-000000000000", name="Outer")
    outer["nodes"] = [{**node_of(document, 10), "id": 7, "pos": [0, 0]}]
    outer["nodes"][0]["inputs"] = [
        {"name": "clip", "type": "CLIP", "link": 1},
        {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 3},
    ]
    outer["links"] = [
        {
            "id": 1,
            "origin_id": -10,
            "origin_slot": 0,
            "target_id": 7,
            "target_slot": 0,
            "type": "CLIP",
        },
        {
            "id": 3,
            "origin_id": -10,
            "origin_slot": 1,
            "target_id": 7,
            "target_slot": 1,
            "type": "STRING",
        },
        {
            "id": 4,
            "origin_id": 7,
            "origin_slot": 0,
            "target_id": -20,
            "target_slot": 0,
            "type": "CONDITIONING",
        },
        {
            "id": 5,
            "origin_id": 7,
            "origin_slot": 1,
            "target_id": -20,
            "target_slot": 1,
            "type": "CONDITIONING",
        },
    ]
    document["definitions"]["subgraphs"].append(outer)
    node_of(document, 10)["type"] = outer["id"]
    nodes = import_document(document, subgraphs="flatten").workflow["nodes"]
    assert nodes["10:7:1"]["inputs"]["text"] == "a red apple on a wooden table"
    assert nodes["10:7:1"]["inputs"]["clip"] == {"node": "4", "output": "clip"}
    assert nodes["3"]["inputs"]["negative"] == {"node": "10:7:2", "output": "conditioning"}


def test_a_subgraph_that_contains_itself_is_refused() -> None:
    document = fixture("editor_v1_subgraph.json")
    subgraph = document["definitions"]["subgraphs"][0]
    subgraph["nodes"][0]["type"] = subgraph["id"]
    with pytest.raises(ComfyFormatError, match="subgraphs nest deeper than 16 levels"):
        import_document(document)


def test_muting_a_subgraph_instance_mutes_its_nodes() -> None:
    document = fixture("editor_v1_subgraph.json")
    node_of(document, 10)["mode"] = 2
    nodes = import_document(document, subgraphs="flatten").workflow["nodes"]
    assert nodes["10:1"]["mode"] == "mute" and nodes["10:2"]["mode"] == "mute"


def index_of(document: dict[str, Any], node_id: int) -> int:
    return next(i for i, n in enumerate(document["nodes"]) if n["id"] == node_id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: node_of(d, 8).update(mode=3),
            "nodes[{8}].mode: expected 0 (always), 1 (on trigger), 2 (never) or 4 (bypass), "
            "got 3 (int)",
        ),
        (
            lambda d: node_of(d, 5)["widgets_values"].__setitem__(1, {"px": 64}),
            "nodes[{5}].widgets_values[1]: expected a number, string, boolean or list of them, "
            "got an object",
        ),
        (
            lambda d: d["links"].__setitem__(4, [5, 10, 0]),
            "links[4]: expected [id, from_node, from_slot, to_node, to_slot, type] or "
            "{id, origin_id, origin_slot, target_id, target_slot, type}, got a list",
        ),
        (
            lambda d: d["links"].__setitem__(4, [5, 99, 0, 7, 0, "CLIP"]),
            'links[4]: links from node "99", which the workflow does not have',
        ),
        (
            lambda d: d["links"].__setitem__(4, [5, 10, "x", 7, 0, "CLIP"]),
            "links[4].origin_slot: expected a whole number, got 'x' (str)",
        ),
        (
            lambda d: node_of(d, 8)["inputs"][1].update(link=77),
            "nodes[{8}].inputs[1].link: link 77 is not in the links table",
        ),
        (
            lambda d: node_of(d, 8).update(pos="here"),
            "nodes[{8}].pos: expected [x, y], got 'here' (str)",
        ),
        (
            lambda d: d["nodes"][0].pop("type"),
            "nodes[0].type: expected a class name, got null",
        ),
        (
            lambda d: d["nodes"].append(5),
            "nodes[11]: expected a node object, got 5 (int)",
        ),
        (
            lambda d: d["nodes"].append({**node_of(d, 5)}),
            "nodes: two nodes share an id",
        ),
        (
            lambda d: d["groups"][0].update(bounding=[1, 2]),
            "groups[0].bounding: expected [x, y, width, height], got a list",
        ),
        (lambda d: d.update(links={}), "links: expected a list of links, got an object"),
        (
            lambda d: d.update(version=2),
            "version: ComfyUI editor workflow version 2 is not one we read (0.4 or 1)",
        ),
        (
            lambda d: d["extra"].update(ds={"zoom": 1}),
            "extra.ds: expected {scale, offset}, got an object",
        ),
        (
            lambda d: d["links"].__setitem__(2, [3, 8, 1, 10, 0, "*"]),
            'links[2]: links to output 1 of node "8" (VAEDecode), which has 1 output(s)',
        ),
    ],
)
def test_malformed_editor_files_are_refused_naming_where(change: Any, message: str) -> None:
    document = v04()
    change(document)
    expected = message.replace("{8}", str(index_of(v04(), 8))).replace(
        "{5}", str(index_of(v04(), 5))
    )
    with pytest.raises(ComfyFormatError) as raised:
        import_editor_workflow(document)
    assert str(raised.value) == expected


def looping_reroutes(document: dict[str, Any]) -> None:
    first = node_of(document, 10)
    second = {**copy.deepcopy(first), "id": 20}
    first["inputs"][0]["link"] = 21
    second["inputs"][0]["link"] = 20
    document["nodes"].append(second)
    document["links"] += [[20, 10, 0, 20, 0, "*"], [21, 20, 0, 10, 0, "*"]]


def subgraph(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = document["definitions"]["subgraphs"][0]
    return found


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "editor_v04_txt2img.json",
            looping_reroutes,
            "links[12]: reroutes 10 -> 20 -> 10 form a loop",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: d.update(extra=[]),
            "extra: expected an object, got a list",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: d["extra"].update(linkExtensions=[{"parentId": 1}]),
            "extra.linkExtensions[0]: expected {id, parentId}, got an object",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: d["extra"].update(reroutes=[{"pos": [0, 0]}]),
            "extra.reroutes[0]: expected {id, pos, ...}, got an object",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: node_of(d, 5).update(widgets_values="64x64"),
            "nodes[{5}].widgets_values: expected a list or an object, got '64x64' (str)",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: node_of(d, 11).update(widgets_values={"value": 7}),
            "nodes[{11}].widgets_values: expected a list, got an object",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: node_of(d, 8).update(inputs={"samples": 8}),
            "nodes[{8}].inputs: expected a list, got an object",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: node_of(d, 8)["inputs"].append({"type": "VAE"}),
            "nodes[{8}].inputs[2]: expected {name, type, link}, got an object",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: d["links"].__setitem__(0, {"id": 1, "origin_id": None}),
            "links[0].origin_slot: expected a whole number, got null",
        ),
        (
            "editor_v04_txt2img.json",
            lambda d: d["links"].__setitem__(0, [1, True, 0, 3, 0, "MODEL"]),
            "links[0].origin_id: expected a node id, got True (bool)",
        ),
        (
            "editor_v1_subgraph.json",
            lambda d: d.update(definitions=[]),
            "definitions: expected an object, got a list",
        ),
        (
            "editor_v1_subgraph.json",
            lambda d: d["definitions"].update(subgraphs={}),
            "definitions.subgraphs: expected a list, got an object",
        ),
        (
            "editor_v1_subgraph.json",
            lambda d: d["definitions"]["subgraphs"].append({"name": "no id"}),
            "definitions.subgraphs[1]: expected a subgraph object with a string id",
        ),
        (
            "editor_v1_subgraph.json",
            lambda d: subgraph(d)["links"][2].update(origin_slot=5),
            "definitions.subgraphs[0].links[2]: links from subgraph input 5, which does not exist",
        ),
        (
            "editor_v1_subgraph.json",
            lambda d: subgraph(d)["links"].pop(),
            'links[4]: links from output 1 of subgraph node "10", which no link inside feeds',
        ),
        (
            "editor_v1_subgraph.json",
            lambda d: subgraph(d)["nodes"][0].update(pos=None),
            "definitions.subgraphs[0].nodes[0].pos: expected [x, y], got null",
        ),
    ],
)
def test_more_malformed_files_are_refused_naming_where(
    name: str, change: Any, message: str
) -> None:
    document = fixture(name)
    original = fixture(name)
    change(document)
    for node_id in (5, 8, 11):
        if any(n["id"] == node_id for n in original["nodes"]):
            message = message.replace(f"{{{node_id}}}", str(index_of(original, node_id)))
    with pytest.raises(ComfyFormatError) as raised:
        import_document(document)
    assert str(raised.value) == message


def test_a_subgraph_output_fed_by_its_own_input_in_a_cycle_is_refused() -> None:
    document = fixture("editor_v1_subgraph.json")
    inner = subgraph(document)
    inner["links"].append(
        {
            "id": 9,
            "origin_id": -10,
            "origin_slot": 0,
            "target_id": -20,
            "target_slot": 0,
            "type": "*",
        }
    )
    inner["links"] = [link for link in inner["links"] if link["id"] != 4]
    node_of(document, 10)["inputs"][0]["link"] = 9
    document["links"].append(
        {"id": 9, "origin_id": 10, "origin_slot": 0, "target_id": 10, "target_slot": 0, "type": "*"}
    )
    with pytest.raises(ComfyFormatError) as raised:
        import_document(document)
    assert str(raised.value) == "links[8]: subgraph outputs feed each other in a loop"
