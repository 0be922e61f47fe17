"""LoRA loading: layouts agree, patches equal the hand-computed W + scale * up @ down."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from latentloom.models.family import SD15, SDXL
from latentloom.models.handles import ClipTextEncoder, DiffusionModel, TextEncoders
from latentloom.models.lora import LoraError, LoraPatch, apply_lora, load_lora
from latentloom.models.lora_names import (
    sgm_aliases,
    text_encoder_index,
    unet_index,
    weighted_module_names,
)
from latentloom.models.lora_tiny import make_tiny_lora
from latentloom.models.patching import applied
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.text.tokenizer import clip_tokenizer


def tiny_sdxl_unet() -> UNet2DConditionModel:
    """SDXL's block layout (no attention in the first block, linear projections), tiny widths."""
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        layers_per_block=2,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=80,
        attention_head_dim=(2, 4, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1, 2),
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=48 + 6 * 8,
        norm_num_groups=32,
    ).eval()


def tiny_sd15_unet() -> UNet2DConditionModel:
    """SD 1.x's layout: 1x1 convolution projections around the transformers."""
    torch.manual_seed(1)
    return UNet2DConditionModel(
        sample_size=8,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()


def clip_config(hidden_size: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=49_408,
        max_position_embeddings=77,
        projection_dim=hidden_size,
    )


def encoder(model: CLIPTextModel | CLIPTextModelWithProjection, pad: int) -> ClipTextEncoder:
    tokenizer = clip_tokenizer() if pad else clip_tokenizer("!")
    return ClipTextEncoder(model.eval(), tokenizer, "penultimate", False, pad)


def diffusion_model(unet: UNet2DConditionModel, sdxl: bool) -> DiffusionModel:
    family = SDXL if sdxl else SD15
    alphas = torch.linspace(0.999, 0.01, 1000, dtype=torch.float64)
    return DiffusionModel(unet, family, "epsilon", alphas, "tiny")


@pytest.fixture(scope="module")
def sdxl() -> tuple[DiffusionModel, TextEncoders]:
    torch.manual_seed(2)
    first = encoder(CLIPTextModel(clip_config(32)), 49_407)
    second = encoder(CLIPTextModelWithProjection(clip_config(48)), 0)
    clip = TextEncoders(SDXL, (first, second), "tiny")
    return diffusion_model(tiny_sdxl_unet(), sdxl=True), clip


@pytest.fixture(scope="module")
def sd15() -> tuple[DiffusionModel, TextEncoders]:
    torch.manual_seed(3)
    clip = TextEncoders(SD15, (encoder(CLIPTextModel(clip_config(32)), 49_407),), "tiny")
    return diffusion_model(tiny_sd15_unet(), sdxl=False), clip


def write(pair: tuple[DiffusionModel, TextEncoders], path: Path, layout: str) -> Path:
    model, clip = pair
    return make_tiny_lora(model.unet, clip, path, layout=layout)  # type: ignore[arg-type]


def patch_fields(
    patches: tuple[object, ...],
) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    fields = {}
    for patch in patches:
        assert isinstance(patch, LoraPatch)
        fields[patch.target] = (patch.up, patch.down, patch.scale)
    return fields


def all_patch_fields(
    pair: tuple[DiffusionModel, TextEncoders],
) -> list[dict[str, tuple[torch.Tensor, torch.Tensor, float]]]:
    model, clip = pair
    return [patch_fields(model.patches), *(patch_fields(e.patches) for e in clip.encoders)]


@pytest.mark.parametrize("layout", ["peft", "kohya_sgm"])
def test_layouts_give_identical_patches(
    sdxl: tuple[DiffusionModel, TextEncoders], tmp_path: Path, layout: str
) -> None:
    kohya = apply_lora(*sdxl, write(sdxl, tmp_path / "kohya.safetensors", "kohya"), 0.8, 0.6)
    other = apply_lora(*sdxl, write(sdxl, tmp_path / "other.safetensors", layout), 0.8, 0.6)
    for left, right in zip(all_patch_fields(kohya), all_patch_fields(other), strict=True):
        assert left.keys() == right.keys() and left
        for target, (up, down, scale) in left.items():
            assert torch.equal(up, right[target][0]), target
            assert torch.equal(down, right[target][1]), target
            assert scale == right[target][2], target


def raw_tensors(path: Path) -> dict[str, torch.Tensor]:
    with SafetensorsFile(path) as file:
        return {key: file.read(key) for key in file}


@pytest.mark.parametrize(
    ("component", "kohya_name", "target"),
    [
        (
            "unet",
            "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k",
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        ),
        ("unet", "lora_unet_down_blocks_0_resnets_0_conv1", "down_blocks.0.resnets.0.conv1.weight"),
        (
            "te2",
            "lora_te2_text_model_encoder_layers_1_self_attn_q_proj",
            "text_model.encoder.layers.1.self_attn.q_proj.weight",
        ),
        ("te1", "lora_te1_text_model_encoder_layers_0_mlp_fc1", "encoder.layers.0.mlp.fc1.weight"),
    ],
)
def test_patched_weight_equals_hand_computed_lora(
    sdxl: tuple[DiffusionModel, TextEncoders],
    tmp_path: Path,
    component: str,
    kohya_name: str,
    target: str,
) -> None:
    path = write(sdxl, tmp_path / "lora.safetensors", "kohya")
    tensors = raw_tensors(path)
    up, down = tensors[f"{kohya_name}.lora_up.weight"], tensors[f"{kohya_name}.lora_down.weight"]
    alpha, rank = tensors[f"{kohya_name}.alpha"].item(), down.shape[0]
    strength = 0.7
    model, clip = apply_lora(*sdxl, path, strength_model=strength, strength_clip=strength)
    handle_module = {
        "unet": (model.unet, model.patches),
        "te1": (clip.encoders[0].model, clip.encoders[0].patches),
        "te2": (clip.encoders[1].model, clip.encoders[1].patches),
    }
    module, patches = handle_module[component]
    original = module.get_parameter(target).detach().clone()
    scale = strength * alpha / rank
    expected = original + (scale * (up.flatten(1) @ down.flatten(1))).reshape(original.shape)
    with applied(module, patches):
        assert torch.equal(module.get_parameter(target), expected)
    assert torch.equal(module.get_parameter(target), original)


def test_linear_lora_fits_a_one_by_one_convolution(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    # SD 1.x's proj_in is a 1x1 Conv2d; LoRAs trained where it is a Linear store 2-D factors.
    model, clip = sd15
    weight = model.unet.get_parameter("down_blocks.0.attentions.0.proj_in.weight")
    assert weight.ndim == 4
    generator = torch.Generator().manual_seed(0)
    up, down = torch.randn(32, 2, generator=generator), torch.randn(2, 32, generator=generator)
    name = "lora_unet_down_blocks_0_attentions_0_proj_in"
    path = tmp_path / "linear.safetensors"
    save_file({f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down}, str(path))
    patched, _ = apply_lora(model, clip, path, 1.0, 1.0)
    expected = weight.detach() + (1.0 * (up @ down)).reshape(weight.shape)  # alpha = rank
    with applied(patched.unet, patched.patches):
        assert torch.equal(
            patched.unet.get_parameter("down_blocks.0.attentions.0.proj_in.weight"), expected
        )


def test_sd15_kohya_file_patches_unet_and_text_encoder(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    path = write(sd15, tmp_path / "lora.safetensors", "kohya")
    keys = raw_tensors(path).keys()
    assert any(key.startswith("lora_te_text_model_encoder_") for key in keys)
    model, clip = apply_lora(*sd15, path, 1.0, 1.0)
    unet_layers = {key.split(".")[0] for key in keys if key.startswith("lora_unet_")}
    text_layers = {key.split(".")[0] for key in keys if key.startswith("lora_te_")}
    assert len(model.patches) == len(unet_layers)
    assert len(clip.encoders[0].patches) == len(text_layers)


def unet_output(model: DiffusionModel) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    context = torch.randn(1, 77, 32, generator=generator)
    with applied(model.unet, model.patches), torch.no_grad():
        return model.unet(sample, 10, encoder_hidden_states=context).sample


def test_strength_zero_is_a_no_op(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    path = write(sd15, tmp_path / "lora.safetensors", "kohya")
    model, clip = apply_lora(*sd15, path, 0.0, 0.0)
    assert model is sd15[0] and clip is sd15[1]
    assert torch.equal(unet_output(model), unet_output(sd15[0]))
    patched, _ = apply_lora(*sd15, path, 1.0, 0.0)
    assert not torch.equal(unet_output(patched), unet_output(sd15[0]))


def test_inputs_are_not_mutated(sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path) -> None:
    model, clip = sd15
    before = {name: value.clone() for name, value in model.unet.state_dict().items()}
    path = write(sd15, tmp_path / "lora.safetensors", "peft")
    new_model, new_clip = apply_lora(model, clip, path, 1.0, 1.0)
    twice, _ = apply_lora(new_model, new_clip, path, 0.5, 0.5)
    assert model.patches == () and clip.encoders[0].patches == ()
    assert len(twice.patches) == 2 * len(new_model.patches) > 0
    assert new_model.unet is model.unet  # modules are shared, never copied
    unet_output(twice)
    for name, value in model.unet.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_peft_alpha_from_metadata_and_default(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    model, clip = sd15
    name = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    tensors = {
        f"{name}.lora_A.weight": torch.ones(4, 32),
        f"{name}.lora_B.weight": torch.ones(32, 4),
    }
    plain = tmp_path / "plain.safetensors"
    save_file(tensors, str(plain))
    [default] = load_lora(plain, model, clip)
    assert default.scale == 1.0  # alpha defaults to the rank
    configured = tmp_path / "configured.safetensors"
    metadata = {
        "lora_adapter_metadata": '{"unet.lora_alpha": 8, "unet.alpha_pattern": {"attn2.to_q": 2}}'
    }
    save_file(tensors, str(configured), metadata=metadata)
    [layer] = load_lora(configured, model, clip)
    assert layer.scale == 2.0
    rslora = tmp_path / "rslora.safetensors"
    save_file(
        tensors,
        str(rslora),
        metadata={"lora_adapter_metadata": '{"unet.lora_alpha": 8, "unet.use_rslora": true}'},
    )
    [layer] = load_lora(rslora, model, clip)
    assert layer.scale == 8 / math.sqrt(4)


def lora_error(
    pair: tuple[DiffusionModel, TextEncoders], path: Path, tensors: dict[str, torch.Tensor]
) -> str:
    save_file(tensors, str(path))
    with pytest.raises(LoraError) as caught:
        apply_lora(*pair, path, 1.0, 1.0)
    return str(caught.value)


def test_unmatched_keys_error_lists_five(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    tensors = {f"lora_unet_missing_{i}.lora_down.weight": torch.ones(1, 1) for i in range(7)}
    tensors["lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"] = torch.ones(1, 1)
    path = tmp_path / "bad.safetensors"
    assert lora_error(sd15, path, tensors) == (
        f"{path}: 8 keys matching no layer of this SD 1.x model: "
        "'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight', "
        "'lora_unet_missing_0.lora_down.weight', 'lora_unet_missing_1.lora_down.weight', "
        "'lora_unet_missing_2.lora_down.weight', 'lora_unet_missing_3.lora_down.weight' "
        "and 3 more. Check that the LoRA was made for SD 1.x"
    )


def test_other_problems_are_reported_together(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    k = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k"
    tensors = {
        f"{q}.lora_up.weight": torch.ones(32, 4),
        f"{q}.lora_down.weight": torch.ones(4, 16),
        f"{k}.lora_up.weight": torch.ones(32, 4),
        "lora_unet_conv_in.hada_w1_a": torch.ones(1),
        "bundle_emb.place.string_to_param.*": torch.ones(1, 32),  # ignored
    }
    path = tmp_path / "bad.safetensors"
    assert lora_error(sd15, path, tensors) == (
        f"{path}: 1 key of LoRA variants Latentloom cannot apply "
        "(LoHa, LoKr, DoRA, OFT, ...): 'lora_unet_conv_in.hada_w1_a'; "
        f"'{k}.lora_up.weight' has no down factor; "
        f"'{q}.lora_up.weight' [32, 4] and '{q}.lora_down.weight' [4, 16] do not fit "
        "'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', whose weight is [32, 32]. "
        "Check that the LoRA was made for SD 1.x"
    )


def test_bundled_embeddings_are_skipped(
    sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path
) -> None:
    path = tmp_path / "bundle.safetensors"
    save_file({"bundle_emb.place.string_to_param.*": torch.ones(1, 32)}, str(path))
    assert load_lora(path, *sd15) == []


def test_pickle_lora_is_refused(sd15: tuple[DiffusionModel, TextEncoders], tmp_path: Path) -> None:
    path = tmp_path / "lora.pt"
    path.write_bytes(b"not read")
    with pytest.raises(Exception, match="pickle checkpoints and are not loaded"):
        apply_lora(*sd15, path, 1.0, 1.0)


@pytest.mark.parametrize(
    ("sgm", "diffusers"),
    [
        ("input_blocks_0_0", "conv_in"),
        ("input_blocks_1_0_in_layers_2", "down_blocks.0.resnets.0.conv1"),
        ("input_blocks_3_0_op", "down_blocks.0.downsamplers.0.conv"),
        ("input_blocks_4_0_skip_connection", "down_blocks.1.resnets.0.conv_shortcut"),
        (
            "input_blocks_4_1_transformer_blocks_0_attn1_to_q",
            "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
        ),
        (
            "input_blocks_8_1_transformer_blocks_1_ff_net_0_proj",
            "down_blocks.2.attentions.1.transformer_blocks.1.ff.net.0.proj",
        ),
        ("middle_block_1_proj_out", "mid_block.attentions.0.proj_out"),
        ("middle_block_2_emb_layers_1", "mid_block.resnets.1.time_emb_proj"),
        ("output_blocks_2_2_conv", "up_blocks.0.upsamplers.0.conv"),
        (
            "output_blocks_5_1_transformer_blocks_0_attn2_to_out_0",
            "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0",
        ),
        ("output_blocks_8_0_out_layers_3", "up_blocks.2.resnets.2.conv2"),
        ("label_emb_0_0", "add_embedding.linear_1"),
        ("time_embed_2", "time_embedding.linear_2"),
        ("out_2", "conv_out"),
    ],
)
def test_sgm_names_of_sdxl_kohya_loras(
    sdxl: tuple[DiffusionModel, TextEncoders], sgm: str, diffusers: str
) -> None:
    assert unet_index(sdxl[0].unet)[sgm] == diffusers


def test_sgm_names_agree_with_diffusers_conversion(
    sdxl: tuple[DiffusionModel, TextEncoders],
) -> None:
    """Oracle: diffusers' own kohya-SDXL key conversion, on every Linear/Conv2d of the UNet.

    Each fake key carries a unique number so the converted key can be paired with its source.
    diffusers names attention layers after its old processors (`attn1.processor.to_q_lora`);
    those spellings are normalised before comparing.
    """
    from diffusers.loaders.lora_conversion_utils import (
        _convert_non_diffusers_lora_to_diffusers,
        _maybe_map_sgm_blocks_to_diffusers,
    )

    unet = sdxl[0].unet
    names = weighted_module_names(unet)
    state: dict[str, torch.Tensor] = {}
    expected: dict[int, str] = {}
    for number, (sgm, name) in enumerate(sgm_aliases(unet, names).items()):
        if isinstance(unet.get_submodule(name), torch.nn.Linear | torch.nn.Conv2d):
            base = "lora_unet_" + sgm.replace(".", "_")
            state[f"{base}.lora_down.weight"] = torch.tensor([float(number)])
            state[f"{base}.lora_up.weight"] = torch.tensor([float(number)])
            expected[number] = name
    mapped = _maybe_map_sgm_blocks_to_diffusers(dict(state), unet.config)
    converted, _ = _convert_non_diffusers_lora_to_diffusers(mapped)
    seen = {}
    for key, value in converted.items():
        if ".down." in key:
            name = key.removeprefix("unet.").removesuffix(".down.weight").removesuffix(".lora")
            name = re.sub(r"\.to_(q|k|v)_lora$", r".to_\1", name.replace(".processor", ""))
            seen[int(value.item())] = name.replace(".to_out_lora", ".to_out.0")
    assert len(expected) > 250
    assert seen == expected


def test_text_encoder_names_map_onto_transformers_5_modules(
    sdxl: tuple[DiffusionModel, TextEncoders],
) -> None:
    first, second = (encoder.model for encoder in sdxl[1].encoders)
    # CLIPTextModel has no `text_model.` level in transformers 5; the projection model does.
    assert text_encoder_index(first)["encoder_layers_0_self_attn_q_proj"] == (
        "encoder.layers.0.self_attn.q_proj"
    )
    assert text_encoder_index(second)["encoder.layers.1.mlp.fc2"] == (
        "text_model.encoder.layers.1.mlp.fc2"
    )
