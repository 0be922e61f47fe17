"""build_t5_encoder: T5 weights in every layout users have, against transformers' own model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import T5EncoderModel

from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.t5_encoder import build_t5_encoder, t5_prefix
from latentloom.models.tiny_t5 import TINY_T5, tiny_t5_config, tiny_t5_state_dict, write_tiny_t5

IDS = torch.tensor([[3, 9, 1202, 13, 3, 9, 1712, 1, 0, 0]])


def _reference(seed: int = 0) -> T5EncoderModel:
    """transformers' model with the same weights, loaded by its own state-dict machinery."""
    model = T5EncoderModel(tiny_t5_config()).eval()
    state = tiny_t5_state_dict(seed)
    state["encoder.embed_tokens.weight"] = state["shared.weight"]
    model.load_state_dict(state, strict=True)
    return model


def _hidden(model: T5EncoderModel) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).last_hidden_state


def test_standalone_file_matches_transformers_bit_for_bit(tmp_path: Path) -> None:
    path = write_tiny_t5(tmp_path / "t5.safetensors", dtype=torch.float32)
    model = build_t5_encoder(path)
    assert model.config.d_model == TINY_T5["d_model"]
    assert model.config.num_layers == TINY_T5["num_layers"]
    assert model.config.num_heads == TINY_T5["num_heads"]
    assert model.config.d_ff == TINY_T5["d_ff"]
    assert model.config.is_gated_act and model.config.dense_act_fn == "gelu_new"
    assert model.encoder.embed_tokens.weight is model.shared.weight
    assert torch.equal(_hidden(model), _hidden(_reference()))


def test_sd3_single_file_prefix_is_found(tmp_path: Path) -> None:
    prefix = "text_encoders.t5xxl.transformer."
    path = tmp_path / "sd3.safetensors"
    tensors = tiny_t5_state_dict(prefix=prefix)
    tensors["model.diffusion_model.x_embedder.proj.bias"] = torch.zeros(4)
    save_tensors(path, tensors)
    assert t5_prefix(tensors) == prefix
    assert torch.equal(_hidden(build_t5_encoder(path)), _hidden(_reference()))


def test_sharded_diffusers_folder_and_fp16_storage(tmp_path: Path) -> None:
    folder = tmp_path / "text_encoder_3"
    folder.mkdir()
    tensors = {key: value.half() for key, value in tiny_t5_state_dict(seed=1).items()}
    names = sorted(tensors)
    save_tensors(folder / "model-00001-of-00002.safetensors", {k: tensors[k] for k in names[:9]})
    save_tensors(folder / "model-00002-of-00002.safetensors", {k: tensors[k] for k in names[9:]})
    model = build_t5_encoder(folder, dtype=torch.float16)
    assert model.shared.weight.dtype == torch.float16
    assert torch.equal(model.shared.weight, tensors["shared.weight"])


def test_state_dict_with_embed_tokens_name_and_decoder_tensors() -> None:
    state = tiny_t5_state_dict(seed=2)
    state["encoder.embed_tokens.weight"] = state.pop("shared.weight")
    state["decoder.final_layer_norm.weight"] = torch.ones(TINY_T5["d_model"])
    assert torch.equal(_hidden(build_t5_encoder(state)), _hidden(_reference(seed=2)))


def test_missing_and_misshaped_tensors_are_reported_together(tmp_path: Path) -> None:
    state = tiny_t5_state_dict()
    del state["encoder.block.1.layer.1.DenseReluDense.wo.weight"]
    state["encoder.final_layer_norm.weight"] = torch.ones(7)
    path = tmp_path / "broken.safetensors"
    save_tensors(path, state)
    with pytest.raises(WeightMismatchError) as caught:
        build_t5_encoder(path)
    assert str(caught.value) == (
        f"{path}: the T5 encoder's tensors do not fit: missing "
        "encoder.block.1.layer.1.DenseReluDense.wo.weight; 'encoder.final_layer_norm.weight' "
        "has shape [7], expected [32]"
    )


def test_a_file_without_t5_names_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "clip.safetensors"
    save_tensors(path, {"text_model.embeddings.token_embedding.weight": torch.zeros(4, 2)})
    with pytest.raises(UnrecognizedCheckpointError, match="no T5 encoder: expected a key ending"):
        build_t5_encoder(path)
