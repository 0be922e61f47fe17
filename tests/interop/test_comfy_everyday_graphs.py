"""ComfyUI graphs built from the everyday node set import, validate, run and export back.

The fixtures are ComfyUI files written by hand in its two formats (editor 0.4 as its
frontend saves it, widget inputs listed; API prompts as it queues them), one graph each:

- `inpaint`: Load Image's alpha as MASK → Grow Mask → VAE Encode (for Inpainting) →
  KSampler → VAE Decode → ImageCompositeMasked back onto the source; beside it, Threshold
  Mask → Set Latent Noise Mask → a second KSampler at denoise 0.6;
- `two_pass`: CLIP Set Last Layer, a Conditioning (Set Area) combined into the prompt, then
  KSampler (Advanced) twice (enable/return leftover noise, then disable/continue from step
  2) with a zeroed negative, VAE Decode, Image Sharpen.

Both formats of a graph must import to the same document with every class mapped, that
document must validate and run on the tiny checkpoint, and export must give back the file's
classes, inputs, widget values and links.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.editor_format import import_editor_workflow
from latentloom.interop.comfy.exporter import export_api, export_editor
from tests.support import WORKFLOWS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"
GRAPHS = ("inpaint", "two_pass")


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def api(graph: str) -> dict[str, Any]:
    return fixture(f"api_{graph}.json")


def editor(graph: str) -> dict[str, Any]:
    return fixture(f"editor_v04_{graph}.json")


def runnable(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    """Each node's type, inputs and title: what both formats must agree on."""
    return {
        node_id: (node["type"], node["inputs"], node.get("title"))
        for node_id, node in document["nodes"].items()
    }


@pytest.mark.parametrize("graph", GRAPHS)
def test_both_formats_import_to_the_same_graph_with_every_class_mapped(graph: str) -> None:
    from_api = import_api_prompt(api(graph))
    from_editor = import_editor_workflow(editor(graph))
    assert from_api.report.unsupported == [] and from_editor.report.unsupported == []
    assert len(from_api.report.mapped) == len(api(graph))
    assert runnable(from_api.workflow) == runnable(from_editor.workflow)


def test_comfyui_words_and_names_become_ours() -> None:
    nodes = import_api_prompt(api("two_pass")).workflow["nodes"]
    first, second = nodes["10"]["inputs"], nodes["11"]["inputs"]
    assert (first["add_noise"], first["return_with_leftover_noise"]) == (True, True)
    assert (second["add_noise"], second["return_with_leftover_noise"]) == (False, False)
    assert (first["seed"], first["sampler"], first["end_at_step"]) == (42, "euler", 2)
    assert first["latent"] == {"node": "5", "output": "latent"}
    assert second["latent"] == {"node": "10", "output": "latent"}
    inpaint = import_api_prompt(api("inpaint")).workflow["nodes"]
    assert inpaint["11"]["inputs"]["mask"] == {"node": "10", "output": "mask"}
    assert inpaint["12"]["inputs"]["image"] == {"node": "10", "output": "image"}
    assert inpaint["17"]["inputs"] == {
        "latent": {"node": "16", "output": "latent"},
        "mask": {"node": "15", "output": "mask"},
    }


@pytest.mark.parametrize("graph", GRAPHS)
def test_imported_graph_validates(graph: str, engine: Engine) -> None:
    for document in (import_api_prompt(api(graph)), import_editor_workflow(editor(graph))):
        assert engine.validate(parse_workflow(document.workflow)) == []


def saved(engine: Engine, report: Mapping[str, Any]) -> np.ndarray:
    entry = report["images"][0]
    path = engine.settings.output_dir / entry["subfolder"] / entry["filename"]
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def test_inpaint_graph_runs_and_changes_only_the_grown_hole(engine: Engine) -> None:
    result = engine.run(parse_workflow(import_api_prompt(api("inpaint")).workflow))
    composited, noise_masked = (
        saved(engine, result.reports["9"]),
        saved(engine, result.reports["20"]),
    )
    assert composited.shape == noise_masked.shape == (256, 256, 3)
    with Image.open(WORKFLOWS / "inputs" / "landscape-hole.png") as source:
        rgba = np.asarray(source.convert("RGBA")).astype(np.int16)
    hole = rgba[..., 3] < 255
    # Grow Mask by 4 (tapered): nothing further than 4 pixels from the hole is pasted over.
    far = np.ones_like(hole)
    rows, columns = np.nonzero(hole)
    far[max(rows.min() - 4, 0) : rows.max() + 5, max(columns.min() - 4, 0) : columns.max() + 5] = (
        False
    )
    # ComfyUI's save truncates 255·x, so a source pixel may come back one level lower.
    assert np.abs(composited[far] - rgba[..., :3][far]).max() <= 1
    assert np.abs(composited[hole] - rgba[..., :3][hole]).max() > 1


def test_two_pass_graph_runs(engine: Engine) -> None:
    result = engine.run(parse_workflow(import_editor_workflow(editor("two_pass")).workflow))
    pixels = saved(engine, result.reports["9"])
    assert pixels.shape == (256, 256, 3) and pixels.min() != pixels.max()


@pytest.mark.parametrize("graph", GRAPHS)
def test_api_prompt_exports_back_as_it_came(graph: str) -> None:
    registry = default_registry()
    imported = parse_workflow(import_api_prompt(api(graph), registry).workflow)
    prompt, report = export_api(imported, registry)
    assert report.unexportable == [] and report.warnings == []
    expected = {i: (n["class_type"], n["inputs"]) for i, n in api(graph).items()}
    assert {i: (n["class_type"], n["inputs"]) for i, n in prompt.items()} == expected


def links_by_name(document: dict[str, Any]) -> set[tuple[int, int, int, str, str]]:
    """Links as (source, slot, target, target input name, type): slot numbers of inputs
    depend on which widget inputs a file lists."""
    inputs = {n["id"]: n["inputs"] for n in document["nodes"]}
    return {
        (source, slot, target, inputs[target][to_slot]["name"], kind)
        for _id, source, slot, target, to_slot, kind in document["links"]
    }


@pytest.mark.parametrize("graph", GRAPHS)
def test_editor_file_exports_back_with_its_widgets_links_and_places(graph: str) -> None:
    registry = default_registry()
    original = editor(graph)
    imported = parse_workflow(import_editor_workflow(original, registry).workflow)
    document, report = export_editor(imported, registry)
    assert report.unexportable == []
    by_id = {n["id"]: n for n in document["nodes"]}
    assert sorted(by_id) == sorted(n["id"] for n in original["nodes"])
    for node in original["nodes"]:
        exported = by_id[node["id"]]
        for key in ("type", "pos", "size", "mode", "widgets_values", "title"):
            assert exported.get(key) == node.get(key), (node["id"], key)
        sockets = [i["name"] for i in node["inputs"] if "widget" not in i]
        assert [i["name"] for i in exported["inputs"] if "widget" not in i] == sockets
        assert [o["type"] for o in exported["outputs"]] == [o["type"] for o in node["outputs"]]
    assert links_by_name(document) == links_by_name(original)
    assert document["extra"]["ds"] == original["extra"]["ds"]
