"""The SD 3 MMDiT name map against diffusers' own whole-dict converter, and its inverse."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

from latentloom.models.keymap import Target
from latentloom.models.layout import UNET_PREFIX
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.sd3_keys import Sd3KeyMap
from latentloom.models.sd3_tiny import make_tiny_sd3, tiny_sd3_modules


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_sd3(tmp_path_factory.mktemp("sd3") / "tiny.safetensors", with_t5=False)


def test_diffusers_converter_gives_the_module_the_tiny_file_was_written_from(
    tiny_file: Path,
) -> None:
    with SafetensorsFile(tiny_file) as file:
        original = {k: file.read(k) for k in file if k.startswith(UNET_PREFIX)}
    converted = convert_sd3_transformer_checkpoint_to_diffusers(original)
    expected = tiny_sd3_modules()["unet"].state_dict()
    assert sorted(converted) == sorted(expected)
    for key, tensor in expected.items():
        assert torch.equal(converted[key].float(), tensor.float()), key


def test_qkv_splits_and_pre_only_modulations_swap() -> None:
    keymap = Sd3KeyMap(num_layers=2)
    assert keymap.to_diffusers("joint_blocks.0.context_block.attn.qkv.weight") == Target(
        "unet",
        (
            "transformer_blocks.0.attn.add_q_proj.weight",
            "transformer_blocks.0.attn.add_k_proj.weight",
            "transformer_blocks.0.attn.add_v_proj.weight",
        ),
        "split_qkv",
    )
    # Only the last block's text stream is pre-only, stored (shift, scale).
    assert keymap.to_diffusers("joint_blocks.0.context_block.adaLN_modulation.1.bias") == Target(
        "unet", ("transformer_blocks.0.norm1_context.linear.bias",), "copy"
    )
    assert keymap.to_diffusers("joint_blocks.1.context_block.adaLN_modulation.1.bias") == Target(
        "unet", ("transformer_blocks.1.norm1_context.linear.bias",), "swap_halves"
    )
    assert keymap.to_diffusers("final_layer.adaLN_modulation.1.weight") == Target(
        "unet", ("norm_out.linear.weight",), "swap_halves"
    )
    assert keymap.to_diffusers("joint_blocks.0.x_block.attn2.ln_k.weight") == Target(
        "unet", ("transformer_blocks.0.attn2.norm_k.weight",), "copy"
    )


def test_names_the_map_cannot_place_are_unknown() -> None:
    keymap = Sd3KeyMap(num_layers=2)
    for rest in ("joint_blocks.0.x_block.attn.extra.weight", "register_tokens", "joint_blocks.x.y"):
        assert keymap.to_diffusers(rest) == Target("unet", (), "unknown")


def test_to_original_inverts_to_diffusers_for_every_tensor() -> None:
    keymap = Sd3KeyMap(num_layers=2)
    for key in tiny_sd3_modules()["unet"].state_dict():
        source = keymap.to_original(key)
        target = keymap.to_diffusers(source.key.removeprefix(UNET_PREFIX))
        assert target.keys[source.part] == key
        assert target.transform == source.transform
