"""The name mapping against diffusers' own whole-state-dict converters, and its edge cases."""

from __future__ import annotations

import pytest
import torch
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
)
from safetensors.torch import load_file

from latentloom.models.family import FamilyName
from latentloom.models.keymap import KeyMap, Target
from latentloom.models.layout import TEXT_TOWERS
from latentloom.models.tiny import keymap_for
from tests.models.conftest import TinyFile, TinyReference


def assert_state_dicts_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].shape == value.shape, key
        assert torch.equal(got[key].float(), value), key


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_tiny_files_convert_the_same_with_diffusers_converters(
    tiny_file: TinyFile, tiny_reference: TinyReference, family: FamilyName
) -> None:
    """diffusers converts our written file to exactly the modules we wrote it from."""
    original = load_file(tiny_file(family))
    modules = tiny_reference(family)
    unet = convert_ldm_unet_checkpoint(original, modules.config_of("unet"))
    assert_state_dicts_equal(unet, modules.unet.state_dict())
    vae = convert_ldm_vae_checkpoint(original, modules.config_of("vae"))
    assert_state_dicts_equal(vae, modules.vae.state_dict())
    for tower, (_, model) in zip(TEXT_TOWERS[family], modules.text, strict=True):
        if tower.layout == "hf_clip":
            text = convert_ldm_clip_checkpoint(original)
        else:
            text = convert_open_clip_checkpoint(model, original, prefix=tower.prefix)
        if not hasattr(model, "text_model"):  # transformers 5's CLIPTextModel has no prefix
            text = {key.removeprefix("text_model."): value for key, value in text.items()}
        assert_state_dicts_equal(text, model.state_dict())


@pytest.fixture(scope="module")
def sd2_keymap(tiny_reference: TinyReference) -> KeyMap:
    return keymap_for("sd2", tiny_reference("sd2"))


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("model_ema.decay", None),
        ("alphas_cumprod", None),
        ("v_pred", None),
        ("cond_stage_model.model.logit_scale", Target("text_encoder", (), "ignore")),
        # SD 2.x reads the penultimate layer, never the projection
        ("cond_stage_model.model.text_projection", Target("text_encoder", (), "ignore")),
        ("model.diffusion_model.input_blocks.1.7.weight", Target("unet", (), "unknown")),
        ("first_stage_model.loss.logvar", Target("vae", (), "unknown")),
        ("cond_stage_model.model.visual.proj", Target("text_encoder", (), "unknown")),
        (
            "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_bias",
            Target(
                "text_encoder",
                tuple(f"encoder.layers.1.self_attn.{n}_proj.bias" for n in "qkv"),
                "split_qkv",
            ),
        ),
        (
            "first_stage_model.decoder.mid.attn_1.proj_out.weight",
            Target("vae", ("decoder.mid_block.attentions.0.to_out.0.weight",), "conv1x1"),
        ),
        (
            "first_stage_model.decoder.up.3.upsample.conv.bias",
            Target("vae", ("decoder.up_blocks.0.upsamplers.0.conv.bias",), "copy"),
        ),
        (
            "model.diffusion_model.output_blocks.1.2.conv.weight",
            Target("unet", ("up_blocks.0.upsamplers.0.conv.weight",), "copy"),
        ),
    ],
)
def test_single_names(sd2_keymap: KeyMap, key: str, target: Target | None) -> None:
    assert sd2_keymap.to_diffusers(key) == target


def test_older_hf_clip_names_without_text_model_prefix_map_too(
    tiny_reference: TinyReference,
) -> None:
    keymap = keymap_for("sd15", tiny_reference("sd15"))
    short = keymap.to_diffusers("cond_stage_model.transformer.final_layer_norm.weight")
    long = keymap.to_diffusers("cond_stage_model.transformer.text_model.final_layer_norm.weight")
    assert short == long == Target("text_encoder", ("final_layer_norm.weight",), "copy")
    position_ids = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    assert keymap.to_diffusers(position_ids) == Target("text_encoder", (), "ignore")
