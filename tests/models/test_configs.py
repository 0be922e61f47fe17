"""Config derivation from shapes: tiny files, and the published full-size structures on meta."""

from __future__ import annotations

from typing import Any

import pytest
from transformers import CLIPTextConfig

from latentloom.models.build import empty_modules
from latentloom.models.configs import (
    ModelConfigs,
    TextEncoderConfig,
    derive_configs,
    heads_for_width,
    norm_groups,
)
from latentloom.models.detect import Detection
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.export import original_shapes
from latentloom.models.family import FAMILIES, FamilyName
from latentloom.models.keymap import KeyMap
from latentloom.models.layout import TEXT_TOWERS
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import sd15_configs, tiny_clip_config, tiny_configs, tiny_vae_config
from tests.models.conftest import TinyFile

CLIP_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "hidden_act",
    "projection_dim",
    "layer_norm_eps",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def clip_fields(config: CLIPTextConfig) -> dict[str, Any]:
    return {field: getattr(config, field) for field in CLIP_FIELDS}


def assert_same_configs(derived: ModelConfigs, expected: ModelConfigs) -> None:
    assert dict(derived.unet) == dict(expected.unet)
    assert dict(derived.vae) == dict(expected.vae)
    assert [item.tower for item in derived.text_encoders] == [
        item.tower for item in expected.text_encoders
    ]
    for got, want in zip(derived.text_encoders, expected.text_encoders, strict=True):
        assert clip_fields(got.config) == clip_fields(want.config)


@pytest.mark.parametrize(
    ("family", "v_prediction"),
    [("sd15", False), ("sd2", False), ("sd2", True), ("sdxl", False)],
)
def test_tiny_file_shapes_give_back_the_configs_it_was_written_with(
    tiny_file: TinyFile, family: FamilyName, v_prediction: bool
) -> None:
    path = tiny_file(family, v_prediction=v_prediction)
    with SafetensorsFile(path) as file:
        shapes = file.shapes()
    detection = Detection(FAMILIES[family], "v_prediction" if v_prediction else "epsilon", "test")
    assert_same_configs(derive_configs(shapes, detection, path), tiny_configs(family, v_prediction))


# --- the published full-size structures, derived from meta shapes (no weights needed) ---


def clip(family: FamilyName, index: int, **dimensions: Any) -> TextEncoderConfig:
    tower = TEXT_TOWERS[family][index]
    config = tiny_clip_config(tower)
    config.update(dimensions)
    return TextEncoderConfig(tower, config)


def full_vae(family: FamilyName, v_prediction: bool = False) -> dict[str, Any]:
    return {
        **tiny_vae_config(family, v_prediction),
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "norm_num_groups": 32,
    }


def sd21_768_v() -> ModelConfigs:
    """stabilityai/stable-diffusion-2-1 (UNet config as published; full 24-layer OpenCLIP-H)."""
    down = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    unet = {
        **sd15_configs().unet,
        "sample_size": 96,
        "attention_head_dim": [5, 10, 20, 20],
        "cross_attention_dim": 1024,
        "use_linear_projection": True,
        "upcast_attention": True,
        "down_block_types": down,
    }
    text = clip(
        "sd2", 0, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
        num_attention_heads=16, projection_dim=1024,
    )  # fmt: skip
    return ModelConfigs(unet=unet, vae=full_vae("sd2", True), text_encoders=(text,))


def sdxl_base() -> ModelConfigs:
    """stabilityai/stable-diffusion-xl-base-1.0."""
    down = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    unet = {
        "sample_size": 128, "in_channels": 4, "out_channels": 4,
        "down_block_types": down,
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "block_out_channels": [320, 640, 1280], "layers_per_block": 2,
        "cross_attention_dim": 2048, "attention_head_dim": [5, 10, 20],
        "use_linear_projection": True, "transformer_layers_per_block": [1, 2, 10],
        "norm_num_groups": 32, "upcast_attention": False,
        "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,
    }  # fmt: skip
    text = (
        clip("sdxl", 0, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
             num_attention_heads=12, projection_dim=768),
        clip("sdxl", 1, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
             num_attention_heads=20, projection_dim=1280),
    )  # fmt: skip
    return ModelConfigs(unet=unet, vae=full_vae("sdxl"), text_encoders=text)


@pytest.mark.parametrize(
    ("family", "v_prediction", "published"),
    [("sd15", False, sd15_configs), ("sd2", True, sd21_768_v), ("sdxl", False, sdxl_base)],
)
def test_published_structures_round_trip_through_original_shapes(
    family: FamilyName, v_prediction: bool, published: Any
) -> None:
    expected: ModelConfigs = published()
    modules = empty_modules(expected)
    keymap = KeyMap(
        FAMILIES[family], modules.config_of("unet"), modules.config_of("vae"), modules.text_roots()
    )
    shapes = original_shapes(modules.components(), keymap)
    detection = Detection(FAMILIES[family], "v_prediction" if v_prediction else "epsilon", "test")
    assert_same_configs(derive_configs(shapes, detection, "published"), expected)
    if family == "sdxl":
        big_g = "conditioner.embedders.1.model."
        assert shapes["model.diffusion_model.label_emb.0.0.weight"] == (1280, 2816)
        assert shapes[big_g + "text_projection"] == (1280, 1280)
        assert shapes[big_g + "transformer.resblocks.0.attn.in_proj_weight"] == (3840, 1280)


# --- the rules shapes cannot show -------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "heads"), [(320, 5), (768, 12), (1024, 16), (1280, 20), (64, 1), (32, 1), (96, 1)]
)
def test_heads_are_64_wide_and_tiny_widths_get_one(width: int, heads: int) -> None:
    assert heads_for_width(width) == heads


def test_norm_groups_are_32_unless_tiny_widths_need_fewer() -> None:
    assert norm_groups([128, 256, 512, 512]) == 32
    assert norm_groups([8, 16, 32, 32]) == 8
    assert norm_groups([6, 12]) == 2


# --- inconsistent files -----------------------------------------------------------------


def tiny_shapes(tiny_file: TinyFile, family: FamilyName) -> dict[str, tuple[int, ...]]:
    with SafetensorsFile(tiny_file(family)) as file:
        return file.shapes()


def test_text_width_must_match_the_unet_context(tiny_file: TinyFile) -> None:
    shapes = tiny_shapes(tiny_file, "sd15")
    shapes["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = (
        49408,
        48,
    )
    detection = Detection(FAMILIES["sd15"], "epsilon", "test")
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        derive_configs(shapes, detection, "mixed.safetensors")
    assert str(caught.value) == (
        "mixed.safetensors: the UNet attends to 32-wide text embeddings but the text "
        "encoder(s) give 48; the file mixes parts of different models"
    )


def test_missing_structural_tensor_is_named(tiny_file: TinyFile) -> None:
    shapes = tiny_shapes(tiny_file, "sd2")
    del shapes["model.diffusion_model.out.2.weight"]
    detection = Detection(FAMILIES["sd2"], "epsilon", "test")
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        derive_configs(shapes, detection, "cut.safetensors")
    assert str(caught.value) == (
        "cut.safetensors: missing tensor 'model.diffusion_model.out.2.weight', needed to work "
        "out the model's structure"
    )


def test_class_conditioning_outside_sdxl_is_refused(tiny_file: TinyFile) -> None:
    shapes = tiny_shapes(tiny_file, "sd15")
    shapes["model.diffusion_model.label_emb.0.0.weight"] = (128, 80)
    detection = Detection(FAMILIES["sd15"], "epsilon", "test")
    with pytest.raises(UnrecognizedCheckpointError, match=r"only supported for SDXL"):
        derive_configs(shapes, detection, "unclip.safetensors")
