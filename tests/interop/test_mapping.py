"""The ComfyUI class table: every entry is sound, and every class imports as the table says.

Each class in `CLASSES` needs a case below (a new entry without one fails
`test_every_class_has_a_mapping_case`): its ComfyUI inputs as an API prompt and as editor
`widgets_values`, and the inputs our node must end up with. Socket inputs come from an
upstream placeholder node "99", so renamed sockets are checked too.
"""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.mapping import BY_CLASS, CLASSES, ClassMapping

UP = ["99", 0]  # a link from the upstream node, ComfyUI style
OURS_UP = {"node": "99", "output": "0"}  # the same link in our document (a placeholder's output)


class Case:
    def __init__(
        self, api: dict[str, Any], widgets: list[Any], ours: dict[str, Any], node_type: str
    ) -> None:
        self.api, self.widgets, self.ours, self.node_type = api, widgets, ours, node_type


CASES: dict[str, Case] = {
    "CheckpointLoaderSimple": Case(
        {"ckpt_name": "a.safetensors"}, ["a.safetensors"], {"checkpoint": "a.safetensors", "prediction": "auto"},
        "loaders.checkpoint",
    ),
    "LoraLoader": Case(
        {"model": UP, "clip": UP, "lora_name": "l.safetensors", "strength_model": 0.8, "strength_clip": 0.5},
        ["l.safetensors", 0.8, 0.5],
        {"model": OURS_UP, "clip": OURS_UP, "lora": "l.safetensors", "strength_model": 0.8, "strength_clip": 0.5},
        "loaders.lora",
    ),
    "CLIPTextEncode": Case(
        {"text": "a cat", "clip": UP}, ["a cat"],
        {"text": "a cat", "clip": OURS_UP, "weighting": "comfy"},
        "conditioning.encode_prompt",
    ),
    "EmptyLatentImage": Case(
        {"width": 512, "height": 768, "batch_size": 2}, [512, 768, 2],
        {"width": 512, "height": 768, "batch": 2}, "latent.empty",
    ),
    "KSampler": Case(
        {"model": UP, "positive": UP, "negative": UP, "latent_image": UP, "seed": 5, "steps": 20,
         "cfg": 7.5, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 0.9},
        [5, "fixed", 20, 7.5, "dpmpp_2m", "karras", 0.9],
        {"model": OURS_UP, "positive": OURS_UP, "negative": OURS_UP, "latent": OURS_UP, "seed": 5,
         "steps": 20, "cfg": 7.5, "sampler": "dpmpp_2m", "scheduler": "karras", "denoise": 0.9},
        "sampling.ksampler",
    ),
    "VAEDecode": Case(
        {"samples": UP, "vae": UP}, [], {"latent": OURS_UP, "vae": OURS_UP}, "image.vae_decode"
    ),
    "VAEEncode": Case(
        {"pixels": UP, "vae": UP}, [], {"image": OURS_UP, "vae": OURS_UP}, "image.vae_encode"
    ),
    "LoadImage": Case(
        {"image": "x.png", "upload": "image"}, ["x.png", "image"], {"image": "x.png"}, "image.load"
    ),
    "SaveImage": Case(
        {"images": UP, "filename_prefix": "p"}, ["p"],
        {"images": OURS_UP, "filename_prefix": "p"}, "image.save",
    ),
    "PreviewImage": Case({"images": UP}, [], {"images": OURS_UP}, "image.preview"),
    "SaveLatent": Case(
        {"samples": UP, "filename_prefix": "latents/ComfyUI"}, ["latents/ComfyUI"],
        {"latent": OURS_UP, "filename_prefix": "latents/ComfyUI"}, "latent.save",
    ),
    "LoadLatent": Case({"latent": "x.latent"}, ["x.latent"], {"latent": "x.latent"}, "latent.load"),
    "PrimitiveInt": Case({"value": -3}, [-3, "fixed"], {"value": -3}, "utility.int"),
    "PrimitiveFloat": Case({"value": 0.5}, [0.5], {"value": 0.5}, "utility.float"),
    "PrimitiveString": Case({"value": "s"}, ["s"], {"value": "s"}, "utility.string"),
    "PrimitiveStringMultiline": Case({"value": "a\nb"}, ["a\nb"], {"value": "a\nb"}, "utility.string"),
    "PrimitiveBoolean": Case({"value": True}, [True], {"value": True}, "utility.boolean"),
    "LatentUpscale": Case(
        {"samples": UP, "upscale_method": "bicubic", "width": 256, "height": 128, "crop": "disabled"},
        ["bicubic", 256, 128, "disabled"],
        {"latent": OURS_UP, "method": "bicubic", "width": 256, "height": 128},
        "latent.upscale",
    ),
    # ComfyUI: samples1 * f + samples2 * (1 - f); ours: a + (b - a) * ratio, so samples1 is b.
    "LatentBlend": Case(
        {"samples1": ["99", 0], "samples2": ["98", 0], "blend_factor": 0.25, "blend_mode": "normal"},
        [0.25, "normal"],
        {"b": OURS_UP, "a": {"node": "98", "output": "0"}, "ratio": 0.25, "mode": "lerp"},
        "latent.interpolate",
    ),
}  # fmt: skip


def test_every_class_has_a_mapping_case() -> None:
    assert sorted(CASES) == sorted(m.comfy_class for m in CLASSES)


@pytest.mark.parametrize("entry", CLASSES, ids=lambda m: m.comfy_class)
def test_entry_names_a_real_node_and_real_inputs(entry: ClassMapping) -> None:
    spec = default_registry().get(entry.node)
    assert spec is not None, f"{entry.comfy_class} maps to {entry.node}, which is not registered"
    assert entry.comfy_class in spec.aliases
    assert BY_CLASS[entry.comfy_class] is entry
    our_inputs = {i.name for i in spec.inputs}
    assert set(entry.rename.values()) <= our_inputs
    assert not set(entry.rename) & set(entry.neutral), "a neutral input has no counterpart"
    assert set(entry.fixed) <= our_inputs
    order = entry.widget_order(spec)
    for name in order:
        if name in entry.neutral:
            continue
        found = spec.input(entry.ours(name))
        assert found is not None and found.is_widget, f"widget {name!r} is not one of ours"
    assert set(entry.seeds) <= set(order) and set(entry.uploads) <= set(order)
    for seed in entry.seeds:
        assert spec.input(entry.ours(seed)).type == "INT"  # type: ignore[union-attr]
    outputs = [o for o in entry.output_names(spec) if o is not None]
    assert all(spec.output(name) is not None for name in outputs)


def upstream_api() -> dict[str, Any]:
    return {
        "99": {"class_type": "Upstream", "inputs": {}},
        "98": {"class_type": "Upstream", "inputs": {}},
    }


@pytest.mark.parametrize("comfy_class", sorted(CASES))
def test_class_imports_from_an_api_prompt(comfy_class: str) -> None:
    case = CASES[comfy_class]
    prompt = {**upstream_api(), "1": {"class_type": comfy_class, "inputs": case.api}}
    result = import_api_prompt(prompt)
    node = result.workflow["nodes"]["1"]
    assert node["type"] == case.node_type
    assert node["inputs"] == case.ours
    assert [m.type for m in result.report.mapped] == [case.node_type]


def editor_graph(comfy_class: str, case: Case) -> dict[str, Any]:
    links: list[list[Any]] = []
    inputs: list[dict[str, Any]] = []
    for name, value in case.api.items():
        if isinstance(value, list):
            link_id = len(links) + 1
            links.append([link_id, int(value[0]), 0, 1, len(inputs), "*"])
            inputs.append({"name": name, "type": "*", "link": link_id})
    upstream = [
        {"id": n, "type": "Upstream", "pos": [0, 0], "mode": 0,
         "outputs": [{"name": "X", "type": "*", "links": [lk[0] for lk in links if lk[1] == n]}]}
        for n in (98, 99)
    ]  # fmt: skip
    node = {
        "id": 1, "type": comfy_class, "pos": [300, 0], "size": [200, 100], "mode": 0,
        "inputs": inputs, "outputs": [], "widgets_values": case.widgets,
    }  # fmt: skip
    return {"nodes": [*upstream, node], "links": links, "version": 0.4}


@pytest.mark.parametrize("comfy_class", sorted(CASES))
def test_class_imports_from_an_editor_file(comfy_class: str) -> None:
    case = CASES[comfy_class]
    result = import_editor_workflow(editor_graph(comfy_class, case))
    node = result.workflow["nodes"]["1"]
    assert node["type"] == case.node_type
    assert dict(sorted(node["inputs"].items())) == dict(sorted(case.ours.items()))
    entry = BY_CLASS[comfy_class]
    if entry.seeds:
        assert node["ui"]["seed_control"] == {entry.ours(entry.seeds[0]): "fixed"}
