"""The SDXL refiner's layout: detection, configs from shapes (tiny and full size), loading from a
single file and from a diffusers folder, against the modules the tiny file was written from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from safetensors.torch import load_file

from latentloom.models.build import Modules, empty_modules
from latentloom.models.configs import derive_configs
from latentloom.models.detect import detect
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.export import original_shapes
from latentloom.models.handles import Checkpoint
from latentloom.models.load import load_checkpoint
from latentloom.models.refiner import is_refiner_clip, is_refiner_model, time_id_count
from latentloom.models.refiner_tiny import (
    refiner_configs,
    refiner_keymap,
    tiny_refiner_modules,
)
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.tiny import make_tiny_checkpoint, tiny_modules
from tests.models.conftest import TinyFile
from tests.models.test_load import public


@pytest.fixture(scope="module")
def refiner_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("refiner") / "tiny-sdxl-refiner.safetensors"
    return make_tiny_checkpoint("sdxl-refiner", path, seed=0)


@pytest.fixture(scope="module")
def reference() -> Modules:
    return tiny_refiner_modules(seed=0)


def assert_matches_reference(checkpoint: Checkpoint, reference: Modules) -> None:
    """Every tensor as written (fp16-exact values, loaded as fp32) and the same configs."""
    got = {
        "unet": checkpoint.model.unet,
        "vae": checkpoint.vae.module,
        "text_encoder_2": checkpoint.clip.encoders[0].model,
    }
    for component, module in reference.components().items():
        want_state, got_state = module.state_dict(), got[component].state_dict()
        assert sorted(got_state) == sorted(want_state), component
        for key, value in want_state.items():
            assert torch.equal(got_state[key], value), f"{component} {key}"
    assert public(checkpoint.model.unet.config) == public(reference.config_of("unet"))
    assert len(checkpoint.clip.encoders) == 1


def test_tiny_refiner_file_has_the_real_key_layout(refiner_file: Path) -> None:
    tensors = load_file(refiner_file)
    # label_emb: pooled width 32 + five 8-wide time embeddings -> the 128-wide time embedding
    assert tensors["model.diffusion_model.label_emb.0.0.weight"].shape == (128, 32 + 5 * 8)
    assert tensors["conditioner.embedders.0.model.text_projection"].shape == (32, 32)
    assert not any(key.startswith("conditioner.embedders.1.") for key in tensors)
    # Attention on the middle levels only: input blocks 4 and 6 (levels 1 and 2), depth 2.
    prefix = "model.diffusion_model.input_blocks."
    attention = {key.split(".")[3] for key in tensors if key.startswith(prefix) and ".1.tr" in key}
    assert attention == {"3", "5"}  # levels 1 and 2 (blocks 1, 2 | 3, 4 | 5, 6 | 7)
    assert "model.diffusion_model.input_blocks.1.1.proj_in.weight" not in tensors
    assert "model.diffusion_model.input_blocks.7.1.proj_in.weight" not in tensors
    assert "model.diffusion_model.middle_block.1.transformer_blocks.1.attn2.to_k.weight" in tensors


def test_tiny_refiner_loads_exactly_the_modules_it_was_written_from(
    refiner_file: Path, reference: Modules
) -> None:
    checkpoint = load_checkpoint(refiner_file, device="cpu", dtype=torch.float32)
    assert_matches_reference(checkpoint, reference)
    assert checkpoint.model.family.name == "sdxl"  # SDXL latents: it takes the base's
    assert [e.layer for e in checkpoint.clip.encoders] == ["penultimate"]
    assert checkpoint.clip.encoders[0].pad_token_id == 0  # OpenCLIP pads with "!"
    assert is_refiner_model(checkpoint.model) and is_refiner_clip(checkpoint.clip)
    assert time_id_count(checkpoint.model.unet, 32) == 5


def test_base_sdxl_is_not_a_refiner(tiny_file: TinyFile) -> None:
    checkpoint = load_checkpoint(tiny_file("sdxl"), device="cpu", dtype=torch.float32)
    assert not is_refiner_model(checkpoint.model)
    assert not is_refiner_clip(checkpoint.clip)
    assert time_id_count(checkpoint.model.unet, 32) == 6


def test_refiner_shares_the_tiny_base_vae_and_big_g() -> None:
    base, refiner = tiny_modules("sdxl", seed=3), tiny_refiner_modules(seed=3)
    base_state = dict(base.text)["text_encoder_2"].state_dict()
    for key, value in dict(refiner.text)["text_encoder_2"].state_dict().items():
        assert torch.equal(value, base_state[key]), key
    base_vae = base.vae.state_dict()
    assert all(torch.equal(v, base_vae[k]) for k, v in refiner.vae.state_dict().items())


def test_unet_names_agree_with_diffusers_converter(refiner_file: Path, reference: Modules) -> None:
    original = load_file(refiner_file)
    converted = convert_ldm_unet_checkpoint(original, dict(reference.unet.config))
    ours = reference.unet.state_dict()
    assert sorted(converted) == sorted(ours)
    assert all(torch.equal(converted[k].float(), ours[k]) for k in ours)


def test_detection_says_refiner_and_refuses_a_mixed_file(refiner_file: Path) -> None:
    tensors = load_file(refiner_file)
    found = detect(tensors.keys(), {}, refiner_file)
    assert (found.family.name, found.variant, found.prediction_type) == (
        "sdxl",
        "refiner",
        "epsilon",
    )
    # The refiner's UNet with the base's 6 time ids cannot be: 32 + 6 x 8 inputs.
    tensors["model.diffusion_model.label_emb.0.0.weight"] = torch.zeros(128, 32 + 6 * 8)
    broken = refiner_file.with_name("broken-refiner.safetensors")
    save_tensors(broken, tensors)
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_checkpoint(broken, device="cpu", dtype=torch.float32)
    assert "takes 80 inputs, which is not the pooled text width 32 plus 5 equal time" in str(
        caught.value
    )


def test_full_size_refiner_configs_come_back_from_its_shapes() -> None:
    """The published refiner structure on the meta device: no weights, real shapes."""
    published = refiner_configs()
    modules = empty_modules(published)
    shapes = original_shapes(modules.components(), refiner_keymap(modules))
    assert shapes["model.diffusion_model.label_emb.0.0.weight"] == (1536, 2560)
    assert shapes["model.diffusion_model.input_blocks.0.0.weight"] == (384, 4, 3, 3)
    found = detect(shapes.keys(), {}, "refiner.safetensors")
    assert found.variant == "refiner"
    derived = derive_configs(shapes, found, "refiner.safetensors")
    unet = derived.unet
    assert unet["block_out_channels"] == [384, 768, 1536, 1536]
    assert unet["transformer_layers_per_block"] == [1, 4, 4, 4]
    assert unet["down_block_types"] == [
        "DownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ]
    assert (unet["cross_attention_dim"], unet["addition_time_embed_dim"]) == (1280, 256)
    assert unet["projection_class_embeddings_input_dim"] == 2560
    assert unet["attention_head_dim"] == [6, 12, 24, 24]
    (text,) = derived.text_encoders
    assert (text.config.hidden_size, text.config.num_hidden_layers) == (1280, 32)
    rebuilt = empty_modules(derived).components()
    for component, module in modules.components().items():
        want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in rebuilt[component].state_dict().items()} == want


def test_diffusers_refiner_folder_loads_the_same_modules(
    reference: Modules, tmp_path: Path
) -> None:
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=reference.vae,
        text_encoder=None,
        text_encoder_2=dict(reference.text)["text_encoder_2"],
        tokenizer=None,
        tokenizer_2=None,
        unet=reference.unet,
        scheduler=_scheduler(),
        requires_aesthetics_score=True,
    )
    pipe.save_pretrained(tmp_path / "refiner", safe_serialization=True)
    index = json.loads((tmp_path / "refiner" / "model_index.json").read_text())
    assert index["requires_aesthetics_score"] is True and index["text_encoder"] == [None, None]
    checkpoint = load_checkpoint(tmp_path / "refiner", device="cpu", dtype=torch.float32)
    assert_matches_reference(checkpoint, reference)
    assert checkpoint.model.family.name == "sdxl"
    assert is_refiner_model(checkpoint.model) and is_refiner_clip(checkpoint.clip)


def _scheduler() -> object:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
