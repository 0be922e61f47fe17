"""Load Checkpoint: the prediction type it detected, and why, in the node's report; the
`prediction` override; ComfyUI clients never see the report (their loaders have none)."""

from __future__ import annotations

from typing import Any

import pytest

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.interop.comfy.jobs_view import comfy_outputs
from latentloom.models.tiny import make_tiny_checkpoint
from tests.support import make_engine

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
    assert found == {"family": "SD 2.x", "prediction": "v_prediction", "reason": V_RULE}


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
