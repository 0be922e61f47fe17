"""The PNGs we save: ComfyUI's pixels and chunks, ours first when reading, ComfyUI's as fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from latentloom import images
from latentloom.engine.executor import Engine
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.images import png_text, read_png_workflow, to_pil
from latentloom.interop.comfy.exporter import editor_ids, export_api, export_editor
from tests.support import load_example


def test_pixels_are_truncated_as_comfyui_writes_them() -> None:
    """`clip(255 * x, 0, 255)` then uint8: 0.999 is 254, where rounding would give 255."""
    values = torch.tensor([0.5, 0.999, 1.2, -0.1, 254.6 / 255, float("inf"), 0.0, float("nan")])
    image = values.reshape(1, 1, 8, 1).expand(1, 1, 8, 3)
    pixels = np.asarray(to_pil(image)[0])[0, :, 0]
    assert pixels.tolist() == [127, 254, 255, 0, 254, 255, 0, 0]


def saved_png(engine: Engine, workflow: Workflow) -> Path:
    entry = engine.run(workflow).reports["save"]["images"][0]
    return Path(engine.settings.output_dir / entry["subfolder"] / entry["filename"])


def resave(source: Path, target: Path, keep: tuple[str, ...]) -> None:
    """The same pixels with only some of the text chunks, as another tool might write them."""
    texts = png_text(source)
    info = PngImagePlugin.PngInfo()
    for keyword in keep:
        info.add_text(keyword, texts[keyword])
    with Image.open(source) as image:
        image.save(target, format="PNG", pnginfo=info)


@pytest.fixture
def txt2img() -> Workflow:
    return load_example("txt2img.json").with_input("sampler", "steps", 2)


def test_a_saved_png_carries_comfyuis_prompt_and_workflow_and_ours(
    engine: Engine, txt2img: Workflow
) -> None:
    path = saved_png(engine, txt2img)
    texts = png_text(path)
    assert list(texts) == ["prompt", "workflow", "latentloom"]  # ComfyUI's order, then ours
    assert json.loads(texts["latentloom"]) == txt2img.to_json()
    assert json.loads(texts["prompt"]) == export_api(txt2img, engine.registry)[0]
    assert json.loads(texts["workflow"]) == export_editor(txt2img, engine.registry)[0]
    assert read_png_workflow(path) == txt2img.to_json()


def executable(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {k: (v["type"], v["inputs"]) for k, v in document["nodes"].items()}


def test_without_our_chunk_the_png_opens_through_comfyuis_chunks(
    engine: Engine, txt2img: Workflow, tmp_path: Path
) -> None:
    path = saved_png(engine, txt2img)
    ids = {ours: str(number) for ours, number in editor_ids(txt2img).items()}

    resave(path, tmp_path / "editor.png", ("prompt", "workflow"))
    from_editor = read_png_workflow(tmp_path / "editor.png")
    assert from_editor is not None
    assert set(from_editor["nodes"]) == {ids[n] for n in txt2img.nodes}
    sampler = from_editor["nodes"][ids["sampler"]]
    assert sampler["type"] == "sampling.ksampler"
    assert sampler["ui"]["pos"] == list(txt2img.nodes["sampler"].ui["pos"])
    assert sampler["inputs"]["latent"] == {"node": ids["latent"], "output": "latent"}
    assert sampler["inputs"]["seed"] == 42 and sampler["inputs"]["steps"] == 2

    resave(path, tmp_path / "api.png", ("prompt",))
    from_prompt = read_png_workflow(tmp_path / "api.png")
    assert from_prompt is not None
    assert executable(from_prompt) == executable(json.loads(png_text(path)["latentloom"])) | {
        # What ComfyUI's API prompt cannot say: Empty Latent's model; prompt weighting,
        # prediction detection and the weight dtype are its own.
        "latent": ("latent.empty", {"width": 256, "height": 256, "batch": 1}),
        "checkpoint": (
            "loaders.checkpoint",
            {
                **txt2img.to_json()["nodes"]["checkpoint"]["inputs"],
                "prediction": "auto",
                "weight_dtype": "default",
            },
        ),
        **{
            name: (
                "conditioning.encode_prompt",
                {**txt2img.to_json()["nodes"][name]["inputs"], "weighting": "comfy"},
            )
            for name in ("positive", "negative")
        },
    }


def test_an_older_latentloom_png_holds_our_document_in_workflow(tmp_path: Path) -> None:
    document = load_example("txt2img.json").to_json()
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", json.dumps(document))
    Image.new("RGB", (4, 4)).save(tmp_path / "old.png", pnginfo=info)
    assert read_png_workflow(tmp_path / "old.png") == document


def test_a_png_without_a_workflow_reads_as_none(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    assert read_png_workflow(tmp_path / "plain.png") is None


def test_comfyui_exports_are_made_once_for_many_images(engine: Engine, txt2img: Workflow) -> None:
    document = txt2img.to_json()
    document["nodes"]["latent"]["inputs"]["batch"] = 3
    document["nodes"]["preview"] = {
        "type": "image.preview",
        "inputs": {"images": {"node": "decode", "output": "image"}},
    }
    workflow = parse_workflow(document)
    images._comfy_chunks.cache_clear()
    result = engine.run(workflow)
    assert len(result.reports["save"]["images"]) == 3
    assert len(result.reports["preview"]["images"]) == 3
    assert images._comfy_chunks.cache_info().misses == 1  # six PNGs, one export


def test_a_workflow_comfyui_cannot_run_still_saves_with_what_it_can(
    engine: Engine, txt2img: Workflow
) -> None:
    document = txt2img.to_json()
    document["nodes"]["noise"] = {
        "type": "latent.add_noise",
        "inputs": {"latent": {"node": "latent", "output": "latent"}, "seed": 1},
    }
    document["nodes"]["sampler"]["inputs"]["latent"] = {"node": "noise", "output": "latent"}
    workflow = parse_workflow(document)
    texts = png_text(saved_png(engine, workflow))
    assert json.loads(texts["latentloom"]) == workflow.to_json()
    # The prompt leaves out Add Noise and what needs it; the editor graph keeps the rest.
    assert set(json.loads(texts["prompt"])) == {"checkpoint", "positive", "negative", "latent"}
    editor = json.loads(texts["workflow"])
    assert len(editor["nodes"]) == len(document["nodes"]) - 1


def test_a_prompt_from_a_comfyui_client_is_written_back_as_it_was_sent(
    engine: Engine, txt2img: Workflow
) -> None:
    """As ComfyUI's Save Image: the client's prompt and each extra_pnginfo entry, verbatim."""
    sent_prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 5}}}
    client_workflow = {"last_node_id": 9, "nodes": [], "links": [], "version": 0.4}
    meta = {
        "comfy_api": {
            "prompt": sent_prompt,
            "extra_data": {"extra_pnginfo": {"workflow": client_workflow, "app": "script"}},
        }
    }
    workflow = txt2img.model_copy(update={"meta": meta})
    texts = png_text(saved_png(engine, workflow))
    assert list(texts) == ["prompt", "workflow", "app", "latentloom"]
    assert json.loads(texts["prompt"]) == sent_prompt
    assert json.loads(texts["workflow"]) == client_workflow
    assert json.loads(texts["app"]) == "script"
    assert json.loads(texts["latentloom"]) == workflow.to_json()


def test_a_comfyui_prompt_sent_without_a_workflow_gets_our_export_of_it(
    engine: Engine, txt2img: Workflow
) -> None:
    sent_prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 5}}}
    workflow = txt2img.model_copy(update={"meta": {"comfy_api": {"prompt": sent_prompt}}})
    texts = png_text(saved_png(engine, workflow))
    assert list(texts) == ["prompt", "workflow", "latentloom"]
    assert json.loads(texts["prompt"]) == sent_prompt
    assert json.loads(texts["workflow"]) == export_editor(workflow, engine.registry)[0]
