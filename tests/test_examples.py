"""Every example workflow validates and runs; results are deterministic and cached by content."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.images import read_png_workflow
from tests.support import WORKFLOWS, load_example, make_engine

EXAMPLES = sorted(path.name for path in WORKFLOWS.glob("*.json"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates_and_runs(name: str, engine: Engine) -> None:
    workflow = load_example(name)
    assert engine.validate(workflow) == []
    result = engine.run(workflow)
    files = [
        entry
        for report in result.reports.values()
        for entries in report.values()
        for entry in entries
        if "filename" in entry  # not Load Checkpoint's detection note
    ]
    assert files, "an example must produce a file"
    for entry in files:
        path = engine.settings.output_dir / entry["subfolder"] / entry["filename"]
        with Image.open(path) as image:
            assert image.size == (256, 256)
            pixels = image.convert("RGB").getextrema()
        assert any(low != high for low, high in pixels), "the image is one flat colour"


def test_saved_png_carries_its_workflow(engine: Engine) -> None:
    workflow = load_example("txt2img.json")
    result = engine.run(workflow)
    entry = result.reports["save"]["images"][0]
    assert read_png_workflow(engine.settings.output_dir / entry["filename"]) == workflow.to_json()


def test_same_workflow_and_seed_give_byte_identical_pngs(
    models_dir: Path, tmp_path: Path, input_dir: Path
) -> None:
    workflow = load_example("txt2img.json")
    pngs = []
    for attempt in ("first", "second"):  # two engines: nothing is served from a cache
        engine = make_engine(models_dir, tmp_path / attempt, input_dir)
        entry = engine.run(workflow).reports["save"]["images"][0]
        pngs.append((engine.settings.output_dir / entry["filename"]).read_bytes())
    assert pngs[0] == pngs[1]
    other_seed = workflow.with_input("sampler", "seed", 43)
    engine = make_engine(models_dir, tmp_path / "third", input_dir)
    entry = engine.run(other_seed).reports["save"]["images"][0]
    assert (engine.settings.output_dir / entry["filename"]).read_bytes() != pngs[0]


def test_rerun_executes_nothing_and_a_new_seed_only_the_sampler_onwards(engine: Engine) -> None:
    workflow = load_example("txt2img.json")
    first = engine.run(workflow)
    assert sorted(first.executed) == sorted(
        ["checkpoint", "positive", "negative", "latent", "sampler", "decode", "save"]
    )
    again = engine.run(workflow)
    assert again.executed == []
    assert again.reports == first.reports
    reseeded = engine.run(workflow.with_input("sampler", "seed", 1))
    assert reseeded.executed == ["sampler", "decode", "save"]
    reprompted = engine.run(workflow.with_input("positive", "text", "a photo of a dog"))
    assert reprompted.executed == ["positive", "sampler", "decode", "save"]


def test_lora_strength_changes_the_image_and_zero_is_a_no_op(engine: Engine) -> None:
    workflow = load_example("lora.json")

    def sampled(strength: float) -> object:
        patched = workflow.with_input("lora", "strength_model", strength)
        patched = patched.with_input("lora", "strength_clip", strength)
        return engine.run(patched, targets=["sampler"]).outputs["sampler"]["latent"].samples

    without = (
        engine.run(
            load_example("txt2img.json")
            .with_input("sampler", "seed", 5)
            .with_input("positive", "text", "a watercolor portrait of a fox")
            .with_input("negative", "text", "blurry"),
            targets=["sampler"],
        )
        .outputs["sampler"]["latent"]
        .samples
    )
    assert sampled(0.0).equal(without)
    assert not sampled(0.8).equal(without)
    # Patches are lifted after use: the shared checkpoint model is unchanged afterwards.
    assert sampled(0.0).equal(without)


def test_latent_upscale_resizes_to_the_requested_pixels(engine: Engine) -> None:
    workflow = load_example("txt2img.json")
    nodes = workflow.to_json()["nodes"]
    nodes["upscale"] = {
        "type": "latent.upscale",
        "inputs": {
            "latent": {"node": "sampler", "output": "latent"},
            "width": 384,
            "height": 320,
            "method": "bilinear",
        },
    }
    nodes["decode"]["inputs"]["latent"] = {"node": "upscale", "output": "latent"}
    upscaled = parse_workflow(dict(workflow.to_json(), nodes=nodes))
    outputs = engine.run(upscaled, targets=["upscale", "decode"]).outputs
    assert tuple(outputs["upscale"]["latent"].samples.shape) == (1, 4, 40, 48)
    assert tuple(outputs["decode"]["image"].shape) == (1, 320, 384, 3)


def test_preview_image_writes_into_the_previews_subfolder(engine: Engine) -> None:
    document = load_example("txt2img.json").to_json()
    document["nodes"]["save"] = {
        "type": "image.preview",
        "inputs": {"images": {"node": "decode", "output": "image"}},
    }
    workflow = parse_workflow(document)
    entry = engine.run(workflow).reports["save"]["images"][0]
    assert entry["subfolder"] == "previews" and entry["filename"] == "preview_00001.png"
    saved = engine.settings.output_dir / "previews" / entry["filename"]
    assert read_png_workflow(saved) == workflow.to_json()
