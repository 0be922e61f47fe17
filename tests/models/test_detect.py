from __future__ import annotations

from pathlib import Path

import pytest

from latentloom.models.detect import detect, detect_family, detect_prediction_type
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FamilyName
from latentloom.models.safetensors_file import SafetensorsFile
from tests.models.conftest import TinyFile


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_each_tiny_family_is_detected_as_epsilon(tiny_file: TinyFile, family: FamilyName) -> None:
    path = tiny_file(family)
    with SafetensorsFile(path) as file:
        found = detect(file.keys(), file.metadata, path)
    assert found.family.name == family
    assert found.prediction_type == "epsilon"
    assert found.prediction_rule == (
        "no v-prediction marker (v_pred key or modelspec metadata): epsilon"
    )


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_v_pred_key_means_v_prediction(tiny_file: TinyFile, family: FamilyName) -> None:
    path = tiny_file(family, v_prediction=True)
    with SafetensorsFile(path) as file:
        found = detect(file.keys(), file.metadata, path)
    assert (found.family.name, found.prediction_type) == (family, "v_prediction")
    assert found.prediction_rule == "the file has a 'v_pred' key"


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("v", "v_prediction"), ("V_Prediction", "v_prediction"), ("epsilon", "epsilon")],
)
def test_modelspec_metadata_decides_when_there_is_no_key(declared: str, expected: str) -> None:
    metadata = {"modelspec.prediction_type": declared}
    prediction, rule = detect_prediction_type(["w"], metadata, "m.safetensors")
    assert prediction == expected
    assert rule == f"metadata modelspec.prediction_type = {declared!r}"


def test_unsupported_prediction_metadata_is_refused() -> None:
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        detect_prediction_type([], {"modelspec.prediction_type": "edm"}, "m.safetensors")
    assert str(caught.value) == (
        "m.safetensors: metadata modelspec.prediction_type is 'edm'; supported: 'epsilon', 'v'"
    )


def test_unknown_layout_lists_what_was_expected_and_what_was_found() -> None:
    keys = [  # an SDXL refiner: one OpenCLIP tower under embedders.0
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.label_emb.0.0.weight",
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
        "found: model.diffusion_model.* (2), conditioner.embedders.0.* (2), "
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
