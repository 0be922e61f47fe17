"""FLUX.1 transformer files: original-layout detection, config from shapes, the key map (a
round trip through a tiny file back into diffusers' module), and load errors naming keys."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.family import FAMILIES, FLUX
from latentloom.models.flux_keys import FLUX_PREFIX, flux_config, flux_prefix, rope_axes
from latentloom.models.flux_load import load_flux_transformer
from latentloom.models.flux_tiny import (
    flux_original_names,
    make_tiny_flux_transformer,
    tiny_flux_config,
    tiny_flux_transformer,
)
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import save_tensors


def tiny(variant: Any) -> Any:
    return tiny_flux_transformer(variant, context_width=32, pooled_width=32)


CPU = torch.device("cpu")


def _load(path: Path) -> Any:
    with SafetensorsFile(path) as file:
        prefix = flux_prefix(file.keys())
        assert prefix is not None
        names = {key[len(prefix) :]: key for key in file if key.startswith(prefix)}
        return load_flux_transformer(file, names, path, device=CPU, dtype=torch.float32)


@pytest.mark.parametrize("variant", ["dev", "schnell"])
@pytest.mark.parametrize("prefix", ["", FLUX_PREFIX])
def test_tiny_file_loads_back_into_the_same_weights(
    tmp_path: Path, variant: Any, prefix: str
) -> None:
    path = make_tiny_flux_transformer(
        tmp_path / "f.safetensors", variant, prefix=prefix, context_width=32, pooled_width=32
    )
    with SafetensorsFile(path) as file:
        assert flux_prefix(file.keys()) == prefix
        assert ("guidance_in.in_layer.weight" in {k.removeprefix(prefix) for k in file}) == (
            variant == "dev"
        )
        # The fused tensors as published: qkv 3 x hidden rows, linear1 3 x hidden + 4 x hidden.
        assert file.shape(prefix + "double_blocks.1.img_attn.qkv.weight") == (192, 64)
        assert file.shape(prefix + "single_blocks.0.linear1.weight") == (448, 64)
    loaded = _load(path)
    reference = tiny(variant)
    ours, theirs = loaded.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    assert dict(loaded.config)["guidance_embeds"] == (variant == "dev")


def test_config_from_full_size_shapes() -> None:
    """FLUX.1 dev's published structure, from shapes alone (no weights)."""
    shapes: dict[str, tuple[int, ...]] = {
        "img_in.weight": (3072, 64),
        "txt_in.weight": (3072, 4096),
        "vector_in.in_layer.weight": (3072, 768),
        "guidance_in.in_layer.weight": (3072, 256),
        "final_layer.linear.weight": (64, 3072),
        "double_blocks.0.img_attn.norm.query_norm.scale": (128,),
        "double_blocks.0.img_mlp.0.weight": (12288, 3072),
    }
    shapes.update({f"double_blocks.{i}.img_mod.lin.weight": (18432, 3072) for i in range(19)})
    shapes.update({f"single_blocks.{i}.linear1.weight": (21504, 3072) for i in range(38)})
    assert flux_config(shapes, "flux1-dev.safetensors") == {
        "patch_size": 1,
        "in_channels": 64,
        "out_channels": 64,
        "num_layers": 19,
        "num_single_layers": 38,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "guidance_embeds": True,
        "axes_dims_rope": (16, 56, 56),
    }
    del shapes["guidance_in.in_layer.weight"]
    assert flux_config(shapes, "flux1-schnell.safetensors")["guidance_embeds"] is False


def test_rope_axes_keep_the_published_split() -> None:
    assert rope_axes(128) == (16, 56, 56)
    assert rope_axes(32) == (4, 14, 14)
    with pytest.raises(ValueError, match="a head width of 20 has no even rotary split"):
        rope_axes(20)


def test_original_names_cover_the_published_count() -> None:
    """780 tensors in flux1-dev.safetensors, 776 in schnell (no guidance_in)."""
    full = {**tiny_flux_config("dev", 4096, 768), "num_layers": 19, "num_single_layers": 38}
    assert len(flux_original_names(full)) == 780
    assert len(flux_original_names({**full, "guidance_embeds": False})) == 776


def test_flux_family_numbers() -> None:
    assert FAMILIES["flux"] is FLUX
    assert (FLUX.latent_channels, FLUX.downscale) == (16, 8)
    assert (FLUX.vae_scaling_factor, FLUX.vae_shift_factor) == (0.3611, 0.1159)
    assert len(FLUX.preview_factors) == 16
    assert FLUX.preview_factors[0] == (-0.0346, 0.0244, 0.0681)
    assert FLUX.preview_factors[15] == (-0.1262, -0.0982, -0.0778)
    assert FLUX.preview_bias == (-0.0329, -0.0718, -0.0851)
    assert math.isclose(sum(sum(row) for row in FLUX.preview_factors), 0.2563, abs_tol=1e-9)


def test_missing_and_wrong_tensors_are_named_before_loading(tmp_path: Path) -> None:
    good = make_tiny_flux_transformer(
        tmp_path / "good.safetensors", "schnell", context_width=32, pooled_width=32
    )
    with SafetensorsFile(good) as file:
        tensors = {key: file.read(key) for key in file}
    del tensors["single_blocks.1.linear2.weight"]
    tensors["double_blocks.0.txt_attn.qkv.bias"] = torch.zeros(190)
    tensors["double_blocks.0.extra.weight"] = torch.zeros(2)
    bad = tmp_path / "bad.safetensors"
    save_tensors(bad, tensors)
    with pytest.raises(WeightMismatchError) as caught:
        _load(bad)
    message = str(caught.value)
    assert "'double_blocks.0.extra.weight' is not part of a FLUX transformer" in message
    assert (
        "'double_blocks.0.txt_attn.qkv.bias' has 190 rows; expected 192 to split into "
        "transformer_blocks.0.attn.add_q_proj.bias, transformer_blocks.0.attn.add_k_proj.bias, "
        "transformer_blocks.0.attn.add_v_proj.bias"
    ) in message
    assert message.endswith(
        "missing from the file: unet 'single_transformer_blocks.1.proj_out.weight'"
    )


def test_a_truncated_file_names_the_missing_shape_key(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    save_tensors(path, {"double_blocks.0.img_attn.qkv.weight": torch.zeros(6, 2),
                        "single_blocks.0.linear1.weight": torch.zeros(14, 2)})  # fmt: skip
    with pytest.raises(
        UnrecognizedCheckpointError, match=r"a FLUX transformer without 'img_in\.weight'"
    ):
        _load(path)


def test_make_tiny_checkpoint_writes_the_transformer_file(tmp_path: Path) -> None:
    from latentloom.models.tiny import make_tiny_checkpoint

    path = make_tiny_checkpoint("flux-dev", tmp_path / "flux1-dev.safetensors")
    with SafetensorsFile(path) as file:
        assert flux_prefix(file.keys()) == ""
        config = flux_config(file.shapes(), path)
    assert (config["joint_attention_dim"], config["pooled_projection_dim"]) == (32, 32)
    assert config["guidance_embeds"] is True
