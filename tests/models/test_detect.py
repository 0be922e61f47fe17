from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.models.detect import (
    Detection,
    detect,
    detect_family,
    detect_prediction_type,
    prediction_from_weights,
)
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FamilyName
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import make_tiny_checkpoint
from tests.models.conftest import TinyFile

UNMARKED = "(the file has no v_pred key or modelspec.prediction_type metadata)"
TELL_TALE = "model.diffusion_model.output_blocks.{}.1.transformer_blocks.0.norm1.bias"


class Weights:
    """Tensors by key, standing in for an open file's `shape` / `read` (plain data)."""

    def __init__(
        self, tensors: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]
    ) -> None:
        self.tensors, self.shapes, self.reads = tensors, shapes, 0

    def shape(self, key: str) -> tuple[int, ...]:
        return self.shapes.get(key) or tuple(self.tensors[key].shape)

    def read(self, key: str) -> torch.Tensor:
        self.reads += 1
        return self.tensors[key]


@pytest.fixture(scope="module")
def unmarked_v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD 2.x v-prediction file as Stability published 768-v: no marker, no metadata."""
    path = tmp_path_factory.mktemp("unmarked") / "tiny-sd2-768-v.safetensors"
    return make_tiny_checkpoint("sd2", path, v_prediction=True, v_marker=False)


def detect_file(path: Path) -> Detection:
    with SafetensorsFile(path) as file:
        return detect(file.keys(), file.metadata, path, weights=file)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_tiny_families_without_a_marker_are_epsilon(
    tiny_file: TinyFile, family: FamilyName
) -> None:
    found = detect_file(tiny_file(family))
    assert found.family.name == family
    assert found.prediction_type == "epsilon"
    assert found.prediction_rule == (
        "no v-prediction marker (v_pred key or modelspec metadata): epsilon"
    )


def test_an_sd2_epsilon_file_is_told_by_its_weights(tiny_file: TinyFile) -> None:
    found = detect_file(tiny_file("sd2"))
    assert (found.family.name, found.prediction_type) == ("sd2", "epsilon")
    assert found.prediction_rule == (
        "weights: the spread of output_blocks.1.1.transformer_blocks.0.norm1.bias is 0.000 "
        f"<= 0.09, as in SD 2.x 512 epsilon models {UNMARKED}"
    )


def test_an_unmarked_sd2_v_file_is_told_by_its_weights(unmarked_v: Path) -> None:
    with SafetensorsFile(unmarked_v) as file:
        assert "v_pred" not in file and "modelspec.prediction_type" not in file.metadata
    found = detect_file(unmarked_v)
    assert (found.family.name, found.prediction_type) == ("sd2", "v_prediction")
    assert found.prediction_rule == (
        "weights: the spread of output_blocks.1.1.transformer_blocks.0.norm1.bias is 0.243 "
        f"> 0.09, as in SD 2.x 768-v models {UNMARKED}"
    )


def test_without_the_weights_an_unmarked_file_is_epsilon(unmarked_v: Path) -> None:
    with SafetensorsFile(unmarked_v) as file:
        found = detect(file.keys(), file.metadata, unmarked_v)
    assert found.prediction_type == "epsilon"


@pytest.mark.parametrize(("spread", "expected"), [(0.05, "epsilon"), (0.15, "v_prediction")])
def test_the_last_output_transformer_decides_at_comfyuis_threshold(
    spread: float, expected: str
) -> None:
    values = torch.randn(320, generator=torch.Generator().manual_seed(1))
    last = (values - values.mean()) / values.std(unbiased=False) * spread
    tensors = {TELL_TALE.format(5): torch.randn(320), TELL_TALE.format(11): last}
    prediction, rule = prediction_from_weights(list(tensors), Weights(tensors, {}))
    assert prediction == expected
    assert f"output_blocks.11.1.transformer_blocks.0.norm1.bias is {spread:.3f}" in rule


def test_an_inpainting_unet_is_epsilon_without_reading_weights() -> None:
    conv_in = "model.diffusion_model.input_blocks.0.0.weight"
    tensors = {TELL_TALE.format(11): torch.randn(320)}
    weights = Weights(tensors, {conv_in: (320, 9, 3, 3)})
    prediction, rule = prediction_from_weights([conv_in, *tensors], weights)
    assert (prediction, weights.reads) == ("epsilon", 0)
    assert rule == (
        "the UNet takes 9 input channels: an inpainting model, which SD 2.x trained as epsilon "
        f"{UNMARKED}"
    )


def test_a_hostile_tell_tale_shape_is_not_read() -> None:
    weights = Weights({}, {TELL_TALE.format(11): (1 << 30,)})
    prediction, rule = prediction_from_weights([TELL_TALE.format(11)], weights)
    assert (prediction, weights.reads) == ("epsilon", 0)
    assert rule == f"no output-block transformer norm bias to read: epsilon {UNMARKED}"


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_v_pred_key_means_v_prediction(tiny_file: TinyFile, family: FamilyName) -> None:
    found = detect_file(tiny_file(family, v_prediction=True))
    assert (found.family.name, found.prediction_type) == (family, "v_prediction")
    assert found.prediction_rule == "the file has a 'v_pred' key"


def test_loading_an_unmarked_v_file_gives_a_v_model_and_says_why(unmarked_v: Path) -> None:
    model = load_checkpoint(unmarked_v, device="cpu", dtype=torch.float32).model
    assert model.prediction_type == "v_prediction"
    assert model.prediction_rule.startswith("weights: the spread of output_blocks.1.1.")
    assert model.unet.config.upcast_attention is True  # type: ignore[attr-defined]


def test_the_caller_overrides_detection_and_the_rule_keeps_what_it_found(
    unmarked_v: Path,
) -> None:
    model = load_checkpoint(
        unmarked_v, device="cpu", dtype=torch.float32, prediction_type="epsilon"
    ).model
    assert model.prediction_type == "epsilon"
    assert model.prediction_rule == (
        "set by the caller (detected v_prediction: weights: the spread of "
        "output_blocks.1.1.transformer_blocks.0.norm1.bias is 0.243 > 0.09, as in SD 2.x "
        f"768-v models {UNMARKED})"
    )


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("v", "v_prediction"), ("V_Prediction", "v_prediction"), ("epsilon", "epsilon")],
)
def test_modelspec_metadata_decides_when_there_is_no_key(declared: str, expected: str) -> None:
    metadata = {"modelspec.prediction_type": declared}
    found = detect_prediction_type(["w"], metadata, "m.safetensors")
    assert found == (expected, f"metadata modelspec.prediction_type = {declared!r}")


def test_unsupported_prediction_metadata_is_refused() -> None:
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        detect_prediction_type([], {"modelspec.prediction_type": "edm"}, "m.safetensors")
    assert str(caught.value) == (
        "m.safetensors: metadata modelspec.prediction_type is 'edm'; supported: 'epsilon', 'v'"
    )


def test_unknown_layout_lists_what_was_expected_and_what_was_found() -> None:
    keys = [  # one OpenCLIP tower under embedders.0, as a refiner, but no label_emb
        "model.diffusion_model.input_blocks.0.0.weight",
        "first_stage_model.decoder.conv_in.weight",
        "conditioner.embedders.0.model.ln_final.weight",
        "conditioner.embedders.0.model.token_embedding.weight",
    ]
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        detect_family(keys, Path("refiner.safetensors"))
    assert str(caught.value) == (
        "refiner.safetensors: unrecognised checkpoint layout; expected one of: "
        "SD 1.x (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*); "
        "SD 2.x (model.diffusion_model.*, first_stage_model.*, cond_stage_model.model.*); "
        "SDXL base (model.diffusion_model.* with label_emb, first_stage_model.*, "
        "conditioner.embedders.0.transformer.* and conditioner.embedders.1.model.*); "
        "SDXL refiner (model.diffusion_model.* with label_emb, first_stage_model.*, "
        "conditioner.embedders.0.model.* only); "
        "found: conditioner.embedders.0.* (2), model.diffusion_model.* (1), "
        "first_stage_model.decoder.* (1)"
    )


def test_a_file_without_its_vae_is_named_as_such() -> None:
    keys = [
        "model.diffusion_model.input_blocks.0.0.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ]
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        detect_family(keys, "unet-only.safetensors")
    assert str(caught.value) == (
        "unet-only.safetensors: looks like SD 1.x but has no VAE. A single-file checkpoint "
        "must hold the UNet, the VAE and the text encoder(s)"
    )
