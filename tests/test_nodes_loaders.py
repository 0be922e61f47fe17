"""The loaders. Load Checkpoint: the prediction type it detected, and why, in the node's report;
the `prediction` override; ComfyUI clients never see the report (their loaders have none).
Load VAE, CLIP Set Last Layer, the split UNet / CLIP loaders, LoRA (model only), Checkpoint
Save and embeddings in prompts, run through the engine on the tiny models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.executor import Engine, NodeExecutionError
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.interop.comfy.jobs_view import comfy_outputs
from latentloom.models.tiny import make_tiny_checkpoint
from latentloom.models.tiny_parts import make_tiny_embedding
from tests.support import load_example, make_engine

UNMARKED = "(the file has no v_pred key or modelspec.prediction_type metadata)"
V_RULE = (
    "weights: the spread of output_blocks.1.1.transformer_blocks.0.norm1.bias is 0.243 > 0.09, "
    f"as in SD 2.x 768-v models {UNMARKED}"
)


@pytest.fixture(scope="module")
def sd2_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("sd2")
    (root / "checkpoints").mkdir()
    v_file = root / "checkpoints" / "sd2-768-v.safetensors"
    make_tiny_checkpoint("sd2", v_file, v_prediction=True, v_marker=False)
    make_tiny_checkpoint("sd2", root / "checkpoints" / "sd2-base.safetensors")
    return make_engine(root, root / "output", root / "input")


def loader_graph(checkpoint: str, prediction: str | None) -> Workflow:
    inputs: dict[str, Any] = {"checkpoint": checkpoint}
    if prediction is not None:
        inputs["prediction"] = prediction
    return parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "checkpoint": {"type": "loaders.checkpoint", "inputs": inputs},
                "empty": {
                    "type": "latent.empty",
                    "inputs": {
                        "width": 64,
                        "height": 64,
                        "batch": 1,
                        "model": {"node": "checkpoint", "output": "model"},
                    },
                },
                "save": {
                    "type": "latent.save",
                    "inputs": {"latent": {"node": "empty", "output": "latent"}},
                },
            },
        }
    )


def detection(engine: Engine, checkpoint: str, prediction: str | None) -> dict[str, Any]:
    result = engine.run(loader_graph(checkpoint, prediction))
    [found] = result.reports["checkpoint"]["detection"]
    assert set(result.reports["checkpoint"]) == {"detection"}
    return dict(found)


def test_an_unmarked_768_v_file_reports_v_prediction_and_why(sd2_engine: Engine) -> None:
    found = detection(sd2_engine, "sd2-768-v.safetensors", None)  # the default: auto
    assert found == {
        "family": "SD 2.x",
        "prediction": "v_prediction",
        "reason": V_RULE,
        "inpainting": False,
    }


def test_an_inpainting_checkpoint_says_so(tmp_path: Path) -> None:
    checkpoints = tmp_path / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    make_tiny_checkpoint("sd15", checkpoints / "inpaint.safetensors", seed=0, inpaint=True)
    engine = make_engine(tmp_path / "models", tmp_path / "output", tmp_path)
    assert detection(engine, "inpaint.safetensors", None)["inpainting"] is True


def test_an_epsilon_file_reports_epsilon_and_why(sd2_engine: Engine) -> None:
    found = detection(sd2_engine, "sd2-base.safetensors", "auto")
    assert found["prediction"] == "epsilon"
    assert found["reason"] == (
        "weights: the spread of output_blocks.1.1.transformer_blocks.0.norm1.bias is 0.000 "
        f"<= 0.09, as in SD 2.x 512 epsilon models {UNMARKED}"
    )


@pytest.mark.parametrize(("override", "prediction"), [("eps", "epsilon"), ("v", "v_prediction")])
def test_the_override_wins_and_the_report_keeps_what_was_detected(
    sd2_engine: Engine, override: str, prediction: str
) -> None:
    found = detection(sd2_engine, "sd2-768-v.safetensors", override)
    assert found["prediction"] == prediction
    assert found["reason"] == f"set by the caller (detected v_prediction: {V_RULE})"


def test_an_unknown_prediction_is_refused_with_the_choices(sd2_engine: Engine) -> None:
    [problem] = sd2_engine.validate(loader_graph("sd2-base.safetensors", "x0"))
    assert (problem.node, problem.input, problem.code) == (
        "checkpoint",
        "prediction",
        "invalid_choice",
    )
    assert problem.message == (
        "node \"checkpoint\" (Load Checkpoint) input 'prediction': 'x0' is not one of: auto, eps, v"
    )


def test_comfyui_clients_do_not_see_the_detection_note() -> None:
    reports = {
        "4": {"detection": [{"family": "SD 2.x", "prediction": "epsilon", "reason": "r"}]},
        "9": {"images": [{"filename": "a.png", "subfolder": ""}]},
    }
    assert comfy_outputs(reports) == {
        "9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}
    }


# --- Load VAE, clip skip, split loaders, LoRA (model only), Checkpoint Save, embeddings ---


def txt2img(**changes: dict[str, Any]) -> dict[str, Any]:
    """The txt2img example as a document, with nodes replaced or added."""
    document = small(load_example("txt2img.json").to_json())
    document["nodes"].update(changes)
    return document


def small(document: dict[str, Any]) -> dict[str, Any]:
    """Fewer steps on a smaller latent: the comparisons hold at any size."""
    document["nodes"]["latent"]["inputs"].update(width=64, height=64)
    document["nodes"]["sampler"]["inputs"].update(steps=3)
    return document


def link(node: str, output: str) -> dict[str, str]:
    return {"node": node, "output": output}


def sampled(engine: Engine, document: dict[str, Any]) -> torch.Tensor:
    result = engine.run(parse_workflow(document), targets=["sampler"])
    samples: torch.Tensor = result.outputs["sampler"]["latent"].samples
    return samples


def test_the_examples_use_what_they_say(engine: Engine) -> None:
    clip_skip = engine.run(load_example("clip_skip_vae.json"), targets=["vae"])
    assert clip_skip.reports["vae"]["detection"] == [
        {"family": "SD 1.x", "reason": "set to SD 1.x"}
    ]
    embedding = load_example("embedding.json")
    with_it = engine.run(embedding, targets=["positive"]).outputs["positive"]["conditioning"]
    text = str(embedding.to_json()["nodes"]["positive"]["inputs"]["text"])
    plain = embedding.with_input("positive", "text", text.replace("embedding:tiny-embedding", "x"))
    without = engine.run(plain, targets=["positive"]).outputs["positive"]["conditioning"]
    assert not torch.equal(with_it.first.embeds, without.first.embeds)


def test_load_vae_decodes_with_the_separate_vae(engine: Engine) -> None:
    decode = {
        "type": "image.vae_decode",
        "inputs": {"vae": link("vae", "vae"), "latent": link("sampler", "latent")},
    }
    vae = {"type": "loaders.vae", "inputs": {"vae": "tiny-vae.safetensors"}}
    result = engine.run(parse_workflow(txt2img(vae=vae, decode=decode)), targets=["decode", "vae"])
    own = engine.run(parse_workflow(txt2img()), targets=["decode"]).outputs["decode"]["image"]
    separate = result.outputs["decode"]["image"]
    assert separate.shape == own.shape == (1, 64, 64, 3)
    assert not torch.equal(separate, own)  # seeded apart from the checkpoint's VAE
    assert result.reports["vae"]["detection"] == [
        {
            "family": "SD 1.x",
            "reason": "no config says which: SD 1.x's latent scale 0.18215 assumed; choose sdxl "
            "for an SDXL VAE",
        }
    ]


def test_clip_skip_changes_the_prompt_and_its_range_is_checked(engine: Engine) -> None:
    skip = {
        "type": "loaders.clip_set_last_layer",
        "inputs": {"clip": link("checkpoint", "clip"), "stop_at_clip_layer": -2},
    }
    document = txt2img(skip=skip)
    document["nodes"]["positive"]["inputs"]["clip"] = link("skip", "clip")
    plain = engine.run(parse_workflow(txt2img()), targets=["positive"]).outputs["positive"]
    skipped = engine.run(parse_workflow(document), targets=["positive"]).outputs["positive"]
    assert not torch.equal(skipped["conditioning"].first.embeds, plain["conditioning"].first.embeds)
    document["nodes"]["skip"]["inputs"]["stop_at_clip_layer"] = -3  # the tiny CLIP has 2 layers
    with pytest.raises(NodeExecutionError) as raised:
        engine.run(parse_workflow(document), targets=["positive"])
    assert str(raised.value) == (
        'node "skip" (CLIP Set Last Layer, loaders.clip_set_last_layer) failed: ClipSkipError: '
        "stop_at_clip_layer -3 is outside this SD 1.x text encoder's range: it has 2 layers, "
        "so use -1 to -2"
    )
    document["nodes"]["skip"]["inputs"]["stop_at_clip_layer"] = -25
    [problem] = engine.validate(parse_workflow(document))
    assert (problem.node, problem.input, problem.code) == (
        "skip",
        "stop_at_clip_layer",
        "out_of_range",
    )


def test_split_files_sample_exactly_like_the_checkpoint(engine: Engine) -> None:
    split = txt2img(
        unet={"type": "loaders.unet", "inputs": {"unet": "tiny-unet-sd15.safetensors"}},
        clip={"type": "loaders.clip", "inputs": {"text_encoder": "tiny-clip-sd15.safetensors"}},
    )
    for name, source in (("positive", "clip"), ("negative", "clip")):
        split["nodes"][name]["inputs"]["clip"] = link(source, "clip")
    for name in ("sampler", "latent"):
        split["nodes"][name]["inputs"]["model"] = link("unet", "model")
    assert torch.equal(sampled(engine, split), sampled(engine, txt2img()))


def test_dual_clip_gives_sdxl_its_two_towers(engine: Engine) -> None:
    document = txt2img()
    document["nodes"]["checkpoint"]["inputs"]["checkpoint"] = "tiny-sdxl.safetensors"
    reference = engine.run(parse_workflow(document), targets=["positive"]).outputs["positive"]
    document["nodes"]["dual"] = {
        "type": "loaders.dual_clip",
        "inputs": {
            "text_encoder_1": "tiny-clip-l-sdxl.safetensors",
            "text_encoder_2": "tiny-clip-g-sdxl.safetensors",
        },
    }
    document["nodes"]["positive"]["inputs"]["clip"] = link("dual", "clip")
    ours = engine.run(parse_workflow(document), targets=["positive"]).outputs["positive"]
    assert torch.equal(ours["conditioning"].first.embeds, reference["conditioning"].first.embeds)


def test_lora_model_only_patches_the_unet_alone(engine: Engine) -> None:
    document = small(load_example("lora.json").to_json())
    document["nodes"]["lora"]["inputs"]["strength_clip"] = 0.0
    reference = sampled(engine, document)
    document["nodes"]["unet_lora"] = {
        "type": "loaders.lora_model_only",
        "inputs": {
            "model": link("checkpoint", "model"),
            "lora": "tiny-lora-sd15.safetensors",
            "strength_model": 0.8,
        },
    }
    for name in ("sampler", "latent"):
        document["nodes"][name]["inputs"]["model"] = link("unet_lora", "model")
    assert torch.equal(sampled(engine, document), reference)


def test_a_saved_checkpoint_loads_back_and_samples_the_same(
    engine: Engine, models_dir: Path, tmp_path: Path, input_dir: Path
) -> None:
    document = small(load_example("lora.json").to_json())
    document["nodes"]["save_checkpoint"] = {
        "type": "loaders.checkpoint_save",
        "inputs": {
            "model": link("lora", "model"),
            "clip": link("lora", "clip"),
            "vae": link("checkpoint", "vae"),
            "filename_prefix": "checkpoints/with-lora",
        },
    }
    result = engine.run(parse_workflow(document), targets=["save_checkpoint", "sampler"])
    assert result.reports["save_checkpoint"] == {
        "checkpoints": [{"filename": "with-lora_00001.safetensors", "subfolder": "checkpoints"}]
    }
    # The output folder, with its checkpoints/, is the model folder of a second engine.
    reloaded = make_engine(engine.settings.output_dir, tmp_path / "again", input_dir)
    saved = txt2img()
    saved["nodes"]["checkpoint"]["inputs"]["checkpoint"] = "with-lora_00001.safetensors"
    saved["nodes"]["positive"]["inputs"]["text"] = "a watercolor portrait of a fox"
    saved["nodes"]["negative"]["inputs"]["text"] = "blurry"
    saved["nodes"]["sampler"]["inputs"].update(seed=5, sampler="dpmpp_2m", scheduler="karras")
    assert torch.equal(sampled(reloaded, saved), result.outputs["sampler"]["latent"].samples)


@pytest.mark.parametrize("prefix", ["../escape", "/abs/x", "a/../../b"])
def test_checkpoint_save_stays_in_the_output_folder(engine: Engine, prefix: str) -> None:
    document = txt2img()
    document["nodes"]["save"] = {
        "type": "loaders.checkpoint_save",
        "inputs": {
            "model": link("checkpoint", "model"),
            "clip": link("checkpoint", "clip"),
            "vae": link("checkpoint", "vae"),
            "filename_prefix": prefix,
        },
    }
    with pytest.raises(NodeExecutionError, match="must stay inside the output folder"):
        engine.run(parse_workflow(document))


def test_an_unknown_embedding_is_refused_before_anything_runs(engine: Engine) -> None:
    workflow = load_example("txt2img.json").with_input(
        "positive", "text", "a cat, (embedding:nope:1.2), embedding:tiny-embedding"
    )
    [problem] = engine.validate(workflow)
    assert (problem.node, problem.input, problem.code) == ("positive", "text", "model_not_found")
    assert problem.message == (
        "node \"positive\" (Encode Prompt) input 'text': embedding 'nope' was not found in the "
        "embeddings folders; available: tiny-embedding-sdxl.safetensors, "
        "tiny-embedding.safetensors"
    )


def test_an_edited_embedding_file_re_runs_its_prompt(
    models_dir: Path, tmp_path: Path, input_dir: Path
) -> None:
    root = tmp_path / "models"
    (root / "embeddings").mkdir(parents=True)
    (root / "checkpoints").symlink_to(models_dir / "checkpoints")
    make_tiny_embedding(root / "embeddings" / "tiny-embedding.safetensors", seed=0)
    engine = make_engine(root, tmp_path / "output", input_dir)
    workflow = load_example("embedding.json")
    first = engine.run(workflow, targets=["positive"])
    assert engine.run(workflow, targets=["positive"]).executed == []
    time.sleep(0.01)  # a new mtime
    make_tiny_embedding(root / "embeddings" / "tiny-embedding.safetensors", seed=1)
    again = engine.run(workflow, targets=["positive"])
    assert again.executed == ["positive"]
    old, new = (r.outputs["positive"]["conditioning"].first.embeds for r in (first, again))
    assert not torch.equal(old, new)
