"""CLIP vision files: the architecture read from shapes (tiny files and the real towers' shapes),
ComfyUI's preprocessing (center crop / squash, 8-bit rounding, CLIP normalisation), the three
outputs against transformers run on the same pixels, and files that are not vision towers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.models.clip_vision import (
    CLIP_MEAN,
    CLIP_STD,
    ClipVision,
    encode_image,
    load_clip_vision,
    preprocess,
    vision_config,
)
from latentloom.models.clip_vision_tiny import make_tiny_clip_vision, tiny_vision_state
from latentloom.models.errors import UnrecognizedCheckpointError, WeightMismatchError
from latentloom.models.safetensors_write import save_tensors

MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(CLIP_STD).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip_vision(tmp_path_factory.mktemp("clip_vision") / "tiny.safetensors")


@pytest.fixture(scope="module")
def tiny(tiny_file: Path) -> ClipVision:
    return load_clip_vision(tiny_file)


def tower_shapes(width: int, layers: int, mlp: int, projection: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "vision_model.embeddings.patch_embedding.weight": (width, 3, 14, 14),
        "vision_model.embeddings.position_embedding.weight": (257, width),
        "visual_projection.weight": (projection, width),
    }
    for layer in range(layers):
        shapes[f"vision_model.encoder.layers.{layer}.mlp.fc1.weight"] = (mlp, width)
    return shapes


@pytest.mark.parametrize(
    ("width", "layers", "mlp", "projection", "heads", "activation"),
    [
        (1024, 24, 4096, 768, 16, "quick_gelu"),  # OpenAI ViT-L/14
        (1280, 32, 5120, 1024, 16, "gelu"),  # OpenCLIP ViT-H/14
        (1664, 48, 8192, 1280, 16, "gelu"),  # OpenCLIP ViT-bigG/14
        (32, 3, 128, 16, 1, "gelu"),  # tiny: 64-wide heads, at least one
    ],
)
def test_the_tower_is_read_from_its_shapes(
    width: int, layers: int, mlp: int, projection: int, heads: int, activation: str
) -> None:
    config = vision_config(tower_shapes(width, layers, mlp, projection), Path("tower.safetensors"))
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (
        width,
        layers,
        mlp,
    )
    assert (config.projection_dim, config.num_attention_heads, config.hidden_act) == (
        projection,
        heads,
        activation,
    )
    assert (config.image_size, config.patch_size) == (224, 14)


def test_the_tiny_file_loads_back_exactly(tiny: ClipVision) -> None:
    expected = tiny_vision_state()
    loaded = tiny.model.state_dict()
    assert set(loaded) == set(expected)
    assert all(torch.equal(loaded[k], expected[k].float()) for k in expected)
    assert (tiny.name, tiny.image_size) == ("custom (width 32)", 224)


def test_preprocessing_rounds_to_8_bits_and_normalises() -> None:
    pixels = preprocess(torch.full((1, 224, 224, 3), 0.5), 224, "center")
    expected = (torch.full((1, 3, 1, 1), 128 / 255) - MEAN) / STD  # 127.5 rounds to even 128
    assert pixels.shape == (1, 3, 224, 224)
    assert torch.allclose(pixels, expected.expand_as(pixels), atol=1e-6)


def test_center_crop_keeps_the_middle_and_none_squashes() -> None:
    image = torch.zeros(1, 224, 448, 3)
    image[:, :, :112] = 1.0  # the left quarter is white, the middle half black
    black = ((0 - MEAN) / STD).expand(1, 3, 224, 224)
    cropped = preprocess(image, 224, "center")
    assert torch.allclose(cropped, black, atol=1e-6)
    squashed = preprocess(image, 224, "none")
    white = ((1 - MEAN) / STD).view(3)
    assert torch.allclose(squashed[0, :, 100, 0], white, atol=1e-6)
    assert torch.allclose(squashed[0, :, 100, 223], black[0, :, 0, 0], atol=1e-6)
    with pytest.raises(ValueError, match="crop 'middle' is not one of: center, none"):
        preprocess(image, 224, "middle")  # type: ignore[arg-type]


def test_encode_gives_transformers_outputs_for_the_same_pixels(tiny: ClipVision) -> None:
    images = torch.rand(2, 160, 200, 3, generator=torch.Generator().manual_seed(1))
    encoded = encode_image(tiny, images, "center")
    with torch.inference_mode():
        out = tiny.model(pixel_values=preprocess(images, 224, "center"), output_hidden_states=True)
    assert encoded.image_embeds.shape == (2, 16)
    assert (
        encoded.last_hidden_state.shape == encoded.penultimate_hidden_states.shape == (2, 257, 32)
    )
    assert torch.equal(encoded.image_embeds, out.image_embeds)
    assert torch.equal(encoded.last_hidden_state, out.last_hidden_state)
    assert torch.equal(encoded.penultimate_hidden_states, out.hidden_states[-2])
    assert not torch.equal(encoded.penultimate_hidden_states, encoded.last_hidden_state)


def test_a_whole_clip_model_file_loads_its_vision_tower(tiny_file: Path, tmp_path: Path) -> None:
    state = tiny_vision_state()
    state["text_model.embeddings.token_embedding.weight"] = torch.zeros(10, 8)
    state["logit_scale"] = torch.ones(())
    save_tensors(tmp_path / "clip.safetensors", state)
    loaded = load_clip_vision(tmp_path / "clip.safetensors")
    assert torch.equal(
        loaded.model.state_dict()["visual_projection.weight"],
        state["visual_projection.weight"].float(),
    )


def test_files_that_are_not_vision_towers_are_refused(tmp_path: Path) -> None:
    state = tiny_vision_state()
    del state["visual_projection.weight"]
    save_tensors(tmp_path / "no-projection.safetensors", state)
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_clip_vision(tmp_path / "no-projection.safetensors")
    assert str(caught.value) == (
        f"{tmp_path / 'no-projection.safetensors'}: not a CLIP vision model with projection: no "
        "visual_projection.weight. Use a transformers CLIPVisionModelWithProjection file, e.g. "
        "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    )
    broken = tiny_vision_state()
    broken["vision_model.post_layernorm.weight"] = torch.ones(33)
    save_tensors(tmp_path / "broken.safetensors", broken)
    with pytest.raises(WeightMismatchError, match=r"wrong shape \['vision_model.post_layernorm"):
        load_clip_vision(tmp_path / "broken.safetensors")
