"""Export to ComfyUI's API prompt: exact JSON, every mapped class, modes, what cannot go."""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.export_common import VALUE_NODES
from latentloom.interop.comfy.exporter import export_api
from latentloom.interop.comfy.mapping import CLASSES, ClassMapping
from latentloom.node import DynamicChoices
from latentloom.registry import Registry
from tests.support import load_example


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()


def workflow(nodes: dict[str, Any], **document: Any) -> Workflow:
    return parse_workflow(
        {"schema": "latentloom/workflow", "version": 2, "nodes": nodes, **document}
    )


def link(node: str, output: str) -> dict[str, str]:
    return {"node": node, "output": output}


TXT2IMG_PROMPT = {
    "checkpoint": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "tiny-sd15.safetensors"},
        "_meta": {"title": "Load Checkpoint"},
    },
    "positive": {
        "class_type": "CLIPTextEncode",
        "inputs": {
            "text": "a photo of a cat sitting on a windowsill, (golden hour:1.2), detailed",
            "clip": ["checkpoint", 1],
        },
        "_meta": {"title": "Positive"},
    },
    "negative": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "blurry, low quality", "clip": ["checkpoint", 1]},
        "_meta": {"title": "Negative"},
    },
    # Our Empty Latent's optional model input sizes latents by family; ComfyUI has none.
    "latent": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 256, "height": 256, "batch_size": 1},
        "_meta": {"title": "Empty Latent"},
    },
    "sampler": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 12,
            "cfg": 7.0,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 1.0,
            "model": ["checkpoint", 0],
            "positive": ["positive", 0],
            "negative": ["negative", 0],
            "latent_image": ["latent", 0],
        },
        "_meta": {"title": "KSampler"},
    },
    "decode": {
        "class_type": "VAEDecode",
        "inputs": {"samples": ["sampler", 0], "vae": ["checkpoint", 2]},
        "_meta": {"title": "VAE Decode"},
    },
    "save": {
        "class_type": "SaveImage",
        "inputs": {"filename_prefix": "txt2img", "images": ["decode", 0]},
        "_meta": {"title": "Save Image"},
    },
}


def test_txt2img_exports_to_the_exact_prompt(registry: Registry) -> None:
    prompt, report = export_api(load_example("txt2img.json"), registry)
    assert prompt == TXT2IMG_PROMPT
    assert list(prompt["sampler"]["inputs"])[:6] == [  # widgets first, as ComfyUI writes them
        "seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"
    ]  # fmt: skip
    assert [(n.node, n.comfy_class) for n in report.exported] == [
        (node_id, node["class_type"]) for node_id, node in TXT2IMG_PROMPT.items()
    ]
    assert report.unexportable == [] and report.format == "comfy-api"


def _one_node_of(entry: ClassMapping, registry: Registry) -> Workflow:
    """A node of the class's Latentloom type, each socket fed by a placeholder source."""
    spec = registry.get(entry.node)
    assert spec is not None, entry.node
    inputs: dict[str, Any] = {}
    sources: list[dict[str, str]] = []
    for spec_input in spec.inputs:
        if not spec_input.is_widget:
            inputs[spec_input.name] = link("source", str(len(sources)))
            sources.append({"name": str(len(sources)), "type": str(spec_input.type)})
        elif isinstance(spec_input.choices, DynamicChoices):
            inputs[spec_input.name] = "some_file.safetensors"
    # What ComfyUI always does (e.g. LatentBlend's lerp) need not be our default (slerp).
    inputs.update({name: value for name, value in entry.fixed.items() if spec.input(name)})
    source_ui = {"comfy": {"class_type": "Source", "inputs": [], "outputs": sources}}
    return workflow(
        {
            "source": {"type": "comfy:Source", "inputs": {}, "ui": source_ui},
            "node": {"type": entry.node, "inputs": inputs},
        }
    )


# Value nodes are ComfyUI's editor-only Primitive nodes on export (every ComfyUI version opens
# those); the API format takes their values inline (test_value_nodes_...).
NODE_CLASSES = [entry for entry in CLASSES if entry.node not in VALUE_NODES]


@pytest.mark.parametrize("entry", NODE_CLASSES, ids=[e.comfy_class for e in NODE_CLASSES])
def test_each_mapped_class_exports_every_input_and_imports_back(
    entry: ClassMapping, registry: Registry
) -> None:
    spec = registry.get(entry.node)
    assert spec is not None
    ours = _one_node_of(entry, registry)
    prompt, report = export_api(ours, registry)
    assert report.unexportable == []
    node = prompt["node"]
    assert node["class_type"] == entry.comfy_class
    sockets = [i for i in spec.inputs if not i.is_widget and i.name not in entry.ours_only]
    widget_names = entry.widget_order(spec)
    # ComfyUI requires every input: defaults are filled in, neutral ones get their neutral value.
    uploads = {"upload"} if entry.uploads else set()  # as ComfyUI's frontend writes prompts
    assert set(node["inputs"]) == (
        set(widget_names) | {entry.theirs(i.name) for i in sockets} | uploads
    )
    for index, spec_input in enumerate(sockets):
        assert node["inputs"][entry.theirs(spec_input.name)] == ["source", index]
    for name, values in entry.neutral.items():
        assert node["inputs"][name] == values[0]
    back = import_api_prompt(prompt, registry).workflow["nodes"]["node"]
    assert back["type"] == entry.node
    expected = {
        name: value for name, value in ours.to_json()["nodes"]["node"]["inputs"].items()
        if name not in entry.ours_only and not isinstance(value, dict)
    }  # fmt: skip
    literal_back = {k: v for k, v in back["inputs"].items() if not isinstance(v, dict)}
    defaults = {i.name: i.default for i in spec.inputs if i.is_widget and i.default is not None}
    assert literal_back == {**defaults, **expected, **entry.fixed}


def test_latent_blend_keeps_its_direction(registry: Registry) -> None:
    """ComfyUI: samples1 * f + samples2 * (1 - f); ours goes from a (ratio 0) to b (ratio 1)."""
    ours = workflow(
        {
            "one": {"type": "latent.empty", "inputs": {}},
            "two": {"type": "latent.empty", "inputs": {"width": 256}},
            "blend": {
                "type": "latent.interpolate",
                "inputs": {
                    "a": link("one", "latent"),
                    "b": link("two", "latent"),
                    "ratio": [0.3],
                    "mode": "lerp",
                },
            },
        }
    )
    prompt, _ = export_api(ours, registry)
    # A one-value list is a value (ComfyUI inputs hold one), and lerp is LatentBlend's only mode.
    assert prompt["blend"]["inputs"] == {
        "blend_factor": 0.3,
        "blend_mode": "normal",
        "samples1": ["two", 0],
        "samples2": ["one", 0],
    }


def test_what_comfyui_cannot_run_is_left_out_with_the_reason(registry: Registry) -> None:
    prompt, report = export_api(load_example("latent_morph.json"), registry)
    assert "morph" not in prompt and "animation" not in prompt and "decode" not in prompt
    assert {"cat", "dog", "checkpoint"} <= set(prompt)
    assert [(u.node, u.reason) for u in report.unexportable] == [
        ("morph", "latent.interpolate: ratio is a list of 6 values; ComfyUI's LatentBlend takes one value"),
        ("animation", "image.save_animation: ComfyUI has no class for Save Animation"),
        (
            "decode",
            "image.vae_decode: its input samples needs node 'morph' (latent.interpolate), "
            "which ComfyUI cannot run",
        ),
    ]  # fmt: skip


def test_slerp_is_not_exported_as_comfyuis_lerp(registry: Registry) -> None:
    ours = workflow(
        {
            "one": {"type": "latent.empty", "inputs": {}},
            "blend": {
                "type": "latent.interpolate",
                "inputs": {"a": link("one", "latent"), "b": link("one", "latent"), "mode": "slerp"},
            },
        }
    )
    prompt, report = export_api(ours, registry)
    assert list(prompt) == ["one"]
    assert report.unexportable[0].reason == (
        "latent.interpolate: mode is 'slerp'; ComfyUI's LatentBlend only does 'lerp'"
    )


def _lora_graph(mode: str) -> Workflow:
    return workflow(
        {
            "ckpt": {"type": "loaders.checkpoint", "inputs": {"checkpoint": "a.safetensors"}},
            "lora": {
                "type": "loaders.lora",
                "mode": mode,
                "inputs": {
                    "model": link("ckpt", "model"),
                    "clip": link("ckpt", "clip"),
                    "lora": "l",
                },
            },
            "text": {
                "type": "conditioning.encode_prompt",
                "inputs": {"clip": link("lora", "clip")},
            },
            "latent": {"type": "latent.empty", "inputs": {"model": link("lora", "model")}},
            "sample": {
                "type": "sampling.ksampler",
                "inputs": {
                    "model": link("lora", "model"),
                    "positive": link("text", "conditioning"),
                    "negative": link("text", "conditioning"),
                    "latent": link("latent", "latent"),
                },
            },
            "note": {"type": "utility.note", "inputs": {"text": "notes never reach the API"}},
        }
    )


def test_a_bypassed_node_passes_its_inputs_through(registry: Registry) -> None:
    prompt, report = export_api(_lora_graph("bypass"), registry)
    assert list(prompt) == ["ckpt", "text", "latent", "sample"]
    assert prompt["text"]["inputs"]["clip"] == ["ckpt", 1]
    assert prompt["sample"]["inputs"]["model"] == ["ckpt", 0]
    assert report.unexportable == []


def test_a_muted_node_and_what_needs_it_are_left_out(registry: Registry) -> None:
    prompt, report = export_api(_lora_graph("mute"), registry)
    # Empty Latent's model input is optional (and ComfyUI's class has none): it stays.
    assert list(prompt) == ["ckpt", "latent"]
    assert report.unexportable == []  # muted is not "ComfyUI cannot": ours skips them too


def test_value_nodes_are_written_into_the_inputs_they_feed(registry: Registry) -> None:
    ours = workflow(
        {
            "seed": {"type": "utility.int", "inputs": {"value": 77}},
            "one": {"type": "latent.empty", "inputs": {"batch": link("seed", "value")}},
            "note": {"type": "utility.note", "inputs": {"text": "hello"}},
        }
    )
    prompt, report = export_api(ours, registry)
    assert prompt == {
        "one": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 512, "height": 512, "batch_size": 77},
            "_meta": {"title": "Empty Latent"},
        }
    }
    assert [n.node for n in report.exported] == ["one"]


COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"},
          "_meta": {"title": "Load Checkpoint"}},
    "10": {"class_type": "FreeU_V2", "inputs": {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2,
           "model": ["4", 0]}, "_meta": {"title": "FreeU_V2"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1},
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]},
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 8, "steps": 20, "cfg": 8.0,
          "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0, "model": ["10", 0],
          "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0]},
          "_meta": {"title": "KSampler"}},
}  # fmt: skip


def test_a_comfyui_prompt_with_an_unsupported_class_comes_back_whole(registry: Registry) -> None:
    imported = import_api_prompt(COMFY_PROMPT, registry)
    assert imported.workflow["nodes"]["10"]["type"] == "comfy:FreeU_V2"
    prompt, report = export_api(parse_workflow(imported.workflow), registry)
    assert set(prompt) == set(COMFY_PROMPT)
    for node_id, node in COMFY_PROMPT.items():
        assert prompt[node_id]["class_type"] == node["class_type"]
        assert prompt[node_id]["inputs"] == node["inputs"], node_id
    assert ("10", "FreeU_V2") in [(n.node, n.comfy_class) for n in report.exported]


def test_a1111_prompt_weighting_exports_with_a_warning(registry: Registry) -> None:
    """ComfyUI's CLIPTextEncode has one weighting; ours defaults to AUTOMATIC1111's."""
    native = load_example("txt2img.json")
    prompt, report = export_api(native, registry)
    assert "weighting" not in prompt["positive"]["inputs"]
    assert report.warnings == [
        f"node \"{name}\" (Encode Prompt): weighting is 'a1111', but ComfyUI's CLIPTextEncode "
        "always uses 'comfy', so its picture may differ"
        for name in ("positive", "negative")
    ]
    comfy_weighted = native.with_input("positive", "weighting", "comfy")
    comfy_weighted = comfy_weighted.with_input("negative", "weighting", "comfy")
    assert export_api(comfy_weighted, registry)[1].warnings == []
