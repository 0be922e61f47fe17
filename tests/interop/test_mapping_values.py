"""The table's value rules, both ways: `booleans`, `shared_values` and `trailing` widgets.

- KSamplerAdvanced's "enable"/"disable" COMBOs are our BOOLEANs: a word imports as a bool and
  a bool exports as the word; any other word, or a link, keeps the node a placeholder.
- UNETLoader's weight_dtype and the CLIP loaders' type share only some values with ours: the
  others import as placeholders, and ours outside them do not export.
- A schedule only we offer (align_your_steps) keeps a sampler from exporting.
- Widgets ComfyUI added or dropped at a class's end (CLIPLoader's device, LatentBlend's
  blend_mode...) may be missing from a file; any other count still makes a placeholder.
"""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.exporter import export_api, export_editor
from latentloom.interop.comfy.object_info import object_info
from tests.interop.test_mapping import CASES, UP, Case, editor_graph, upstream_api


def api_import(comfy_class: str, inputs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    prompt = {**upstream_api(), "1": {"class_type": comfy_class, "inputs": inputs}}
    result = import_api_prompt(prompt)
    reasons = [u.reason for u in result.report.unsupported if u.node == "1"]
    return result.workflow, reasons


def editor_import(comfy_class: str, api: dict[str, Any], widgets: list[Any]) -> dict[str, Any]:
    graph = editor_graph(comfy_class, Case(api, widgets, {}, ""))
    node: dict[str, Any] = import_editor_workflow(graph).workflow["nodes"]["1"]
    return node


def advanced(**changes: Any) -> dict[str, Any]:
    return {**CASES["KSamplerAdvanced"].api, **changes}


def ours_advanced(**inputs: Any) -> dict[str, Any]:
    """Our document with one KSampler (Advanced), its sockets fed by a placeholder."""
    up = {"node": "99", "output": "0"}
    sockets = {"model": up, "positive": up, "negative": up, "latent": up}
    return {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {
            "99": {"type": "comfy:Upstream", "inputs": {}},
            "1": {"type": "sampling.ksampler_advanced", "inputs": {**sockets, **inputs}},
        },
    }


@pytest.mark.parametrize(
    ("add_noise", "leftover", "ours"),
    [("enable", "disable", (True, False)), ("disable", "enable", (False, True))],
)
def test_enable_and_disable_import_as_booleans(
    add_noise: str, leftover: str, ours: tuple[bool, bool]
) -> None:
    workflow, reasons = api_import(
        "KSamplerAdvanced", advanced(add_noise=add_noise, return_with_leftover_noise=leftover)
    )
    inputs = workflow["nodes"]["1"]["inputs"]
    assert reasons == []
    assert (inputs["add_noise"], inputs["return_with_leftover_noise"]) == ours


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("maybe", "input 'add_noise' is 'maybe'; Latentloom only supports 'enable', 'disable'"),
        (True, "input 'add_noise' is True; Latentloom only supports 'enable', 'disable'"),
        (
            UP,
            "input 'add_noise' is linked; Latentloom only takes it typed in ('enable', 'disable')",
        ),
    ],
)
def test_other_values_keep_the_node_a_placeholder(value: Any, reason: str) -> None:
    workflow, reasons = api_import("KSamplerAdvanced", advanced(add_noise=value))
    assert workflow["nodes"]["1"]["type"] == "comfy:KSamplerAdvanced"
    assert reasons == [reason]


def test_a_primitive_feeding_the_combo_imports_as_the_boolean() -> None:
    case = CASES["KSamplerAdvanced"]
    graph = editor_graph("KSamplerAdvanced", case)
    node = graph["nodes"][-1]
    node["inputs"].append(
        {"name": "add_noise", "type": "COMBO", "widget": {"name": "add_noise"}, "link": 50}
    )
    graph["nodes"].append(
        {"id": 7, "type": "PrimitiveNode", "pos": [0, 300], "mode": 0,
         "outputs": [{"name": "COMBO", "type": "COMBO", "links": [50],
                      "widget": {"name": "add_noise"}}],
         "widgets_values": ["disable"]}
    )  # fmt: skip
    graph["links"].append([50, 7, 0, 1, len(node["inputs"]) - 1, "COMBO"])
    imported = import_editor_workflow(graph).workflow["nodes"]["1"]
    assert imported["type"] == "sampling.ksampler_advanced"
    assert imported["inputs"]["add_noise"] is False


def test_booleans_export_as_words_and_defaults_as_comfyuis() -> None:
    registry = default_registry()
    workflow = parse_workflow(ours_advanced(add_noise=False))
    prompt, report = export_api(workflow, registry)
    assert report.unexportable == []
    inputs = prompt["1"]["inputs"]
    assert (inputs["add_noise"], inputs["return_with_leftover_noise"]) == ("disable", "disable")
    document, _ = export_editor(workflow, registry)
    [node] = [n for n in document["nodes"] if n["id"] == 1]
    assert node["widgets_values"][0] == "disable" and node["widgets_values"][-1] == "disable"
    assert node["widgets_values"][1:3] == [0, "fixed"]  # noise_seed, then its control


def test_a_linked_boolean_does_not_export() -> None:
    document = ours_advanced()
    document["nodes"]["flag"] = {"type": "utility.boolean", "inputs": {"value": True}}
    document["nodes"]["1"]["inputs"]["add_noise"] = {"node": "flag", "output": "value"}
    for export in (export_api, export_editor):
        _, report = export(parse_workflow(document), default_registry())
        assert [(u.node, u.reason) for u in report.unexportable] == [
            ("1", "sampling.ksampler_advanced: add_noise is linked; ComfyUI's KSamplerAdvanced "
                  "takes 'enable' or 'disable' typed in")
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("comfy_class", "changes", "reason"),
    [
        ("UNETLoader", {"weight_dtype": "int4"},
         "input 'weight_dtype' is 'int4'; Latentloom only supports 'default', 'fp8_e4m3fn', "
         "'fp8_e4m3fn_fast', 'fp8_e5m2'"),
        ("CLIPLoader", {"type": "stable_cascade"},
         "input 'type' is 'stable_cascade'; Latentloom only supports 'stable_diffusion', 'sd3'"),
        ("DualCLIPLoader", {"type": "hunyuan_video"},
         "input 'type' is 'hunyuan_video'; Latentloom only supports 'sdxl', 'sd3', 'flux'"),
        ("CLIPLoader", {"device": "cpu"}, "input 'device' is 'cpu'; Latentloom only supports 'default'"),
    ],
)  # fmt: skip
def test_values_we_do_not_share_keep_the_node_a_placeholder(
    comfy_class: str, changes: dict[str, Any], reason: str
) -> None:
    workflow, reasons = api_import(comfy_class, {**CASES[comfy_class].api, **changes})
    assert workflow["nodes"]["1"]["type"] == f"comfy:{comfy_class}"
    assert reasons == [reason]


def test_our_values_comfyui_lacks_do_not_export() -> None:
    document = {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {
            "1": {
                "type": "loaders.unet",
                "inputs": {"unet": "u.safetensors", "weight_dtype": "fp16"},
            },
            "2": {"type": "loaders.unet", "inputs": {"unet": "u.safetensors"}},
        },
    }
    prompt, report = export_api(parse_workflow(document), default_registry())
    assert [(u.node, u.reason) for u in report.unexportable] == [
        (
            "1",
            "loaders.unet: weight_dtype is 'fp16'; ComfyUI's UNETLoader only does 'default', "
            "'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2'",
        )
    ]
    assert prompt["2"]["inputs"] == {"unet_name": "u.safetensors", "weight_dtype": "default"}


@pytest.mark.parametrize(
    ("node_type", "comfy_class"),
    [
        ("sampling.ksampler", "KSampler"),
        ("sampling.ksampler_advanced", "KSamplerAdvanced"),
        ("sampling.basic_scheduler", "BasicScheduler"),
    ],
)
def test_a_schedule_comfyui_samplers_lack_does_not_export(node_type: str, comfy_class: str) -> None:
    document = ours_advanced(scheduler="align_your_steps")
    document["nodes"]["1"]["type"] = node_type
    document["nodes"]["1"]["inputs"] = {"scheduler": "align_your_steps"}
    document["nodes"]["2"] = {"type": node_type, "inputs": {"scheduler": "karras"}}
    prompt, report = export_api(parse_workflow(document), default_registry())
    assert [(u.node, u.reason) for u in report.unexportable] == [
        ("1", f"{node_type}: scheduler is 'align_your_steps', which ComfyUI's {comfy_class} "
              "does not offer")
    ]  # fmt: skip
    assert prompt["2"]["inputs"]["scheduler"] == "karras"


def test_object_info_offers_the_words_and_only_the_shared_values() -> None:
    info = object_info(default_registry(), lambda folder: [])
    advanced_inputs = info["KSamplerAdvanced"]["input"]["required"]
    [words, options] = advanced_inputs["add_noise"]
    assert (words, options["default"]) == (["enable", "disable"], "enable")
    [words, options] = advanced_inputs["return_with_leftover_noise"]
    assert (words, options["default"]) == (["disable", "enable"], "disable")
    assert info["UNETLoader"]["input"]["required"]["weight_dtype"][0] == [
        "default",
        "fp8_e4m3fn",
        "fp8_e4m3fn_fast",
        "fp8_e5m2",
    ]
    assert info["CLIPLoader"]["input"]["required"]["type"][0] == ["stable_diffusion", "sd3"]
    assert info["CLIPLoader"]["input"]["required"]["device"] == [
        ["default"],
        {"default": "default"},
    ]
    assert "family" not in info["VAELoader"]["input"]["required"]


@pytest.mark.parametrize(
    ("comfy_class", "widgets", "ours"),
    [
        ("CLIPLoader", ["c.safetensors", "stable_diffusion"],
         {"text_encoder": "c.safetensors", "type": "stable_diffusion"}),
        ("DualCLIPLoader", ["l.safetensors", "g.safetensors", "sdxl"],
         {"text_encoder_1": "l.safetensors", "text_encoder_2": "g.safetensors", "type": "sdxl"}),
        # Files from before the type and weight_dtype widgets: ours take their defaults.
        ("CLIPLoader", ["c.safetensors"], {"text_encoder": "c.safetensors"}),
        ("DualCLIPLoader", ["l.safetensors", "g.safetensors"],
         {"text_encoder_1": "l.safetensors", "text_encoder_2": "g.safetensors"}),
        ("UNETLoader", ["u.safetensors"], {"unet": "u.safetensors", "prediction": "auto"}),
        # Files from before resolution_steps: ours takes its default, 1, as ComfyUI did.
        ("ImageScaleToTotalPixels", ["bilinear", 0.25],
         {"image": {"node": "99", "output": "0"}, "upscale_method": "bilinear", "megapixels": 0.25}),
        # ComfyUI 0.8 stores LatentBlend's factor alone.
        ("LatentBlend", [0.25],
         {"b": {"node": "99", "output": "0"}, "a": {"node": "98", "output": "0"}, "ratio": 0.25, "mode": "lerp"}),
    ],
)  # fmt: skip
def test_files_without_the_trailing_widgets_import(
    comfy_class: str, widgets: list[Any], ours: dict[str, Any]
) -> None:
    node = editor_import(comfy_class, CASES[comfy_class].api, widgets)
    assert node["type"] == CASES[comfy_class].node_type
    assert node["inputs"] == ours


def test_a_count_no_version_stores_still_makes_a_placeholder() -> None:
    graph = editor_graph("ImageScaleToTotalPixels", CASES["ImageScaleToTotalPixels"])
    graph["nodes"][-1]["widgets_values"] = ["bilinear"]
    result = import_editor_workflow(graph)
    assert result.workflow["nodes"]["1"]["type"] == "comfy:ImageScaleToTotalPixels"
    assert [u.reason for u in result.report.unsupported if u.node == "1"] == [
        "widgets_values has 1 value(s); ImageScaleToTotalPixels stores 3: upscale_method, "
        "megapixels, resolution_steps"
    ]
