"""SD 3.x structure from shapes: the tiny model, and the published 3.5 medium / large at full
shapes (built on the meta device: names and shapes only, no weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.sd3_config import describe, text_towers, transformer_config, vae_config
from latentloom.models.sd3_keys import is_sd3
from latentloom.models.sd3_tiny import (
    SD3_FULL_VAE,
    SD35_LARGE,
    SD35_MEDIUM,
    full_size_shapes,
    make_tiny_sd3,
    tiny_transformer_config,
    tiny_vae_config,
)


def _without_sample_size(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "sample_size"}


@pytest.fixture(scope="module")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, ...]]:
    path = make_tiny_sd3(tmp_path_factory.mktemp("sd3") / "tiny.safetensors", with_t5=False)
    with SafetensorsFile(path) as file:
        return file.shapes()


def test_tiny_file_gives_back_the_configs_it_was_written_from(
    tiny_shapes: dict[str, tuple[int, ...]],
) -> None:
    assert is_sd3(tiny_shapes)
    derived = transformer_config(tiny_shapes, "tiny.safetensors")
    assert _without_sample_size(derived) == _without_sample_size(tiny_transformer_config())
    assert _without_sample_size(vae_config(tiny_shapes, "tiny.safetensors")) == (
        _without_sample_size(tiny_vae_config())
    )
    assert [tower.prefix for tower in text_towers(tiny_shapes)] == [
        "text_encoders.clip_l.transformer.",
        "text_encoders.clip_g.transformer.",
    ]


def test_a_missing_tensor_is_named(tiny_shapes: dict[str, tuple[int, ...]]) -> None:
    shapes = {k: v for k, v in tiny_shapes.items() if not k.endswith("context_embedder.weight")}
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        transformer_config(shapes, Path("broken.safetensors"))
    assert str(caught.value) == (
        "broken.safetensors: missing tensor 'model.diffusion_model.context_embedder.weight', "
        "needed to work out the SD 3 transformer's structure"
    )


@pytest.mark.slow
@pytest.mark.parametrize("published", [SD35_MEDIUM, SD35_LARGE], ids=["medium", "large"])
def test_full_size_sd35_is_detected_with_its_published_config(published: dict[str, Any]) -> None:
    shapes = full_size_shapes(published)
    assert is_sd3(shapes)
    assert transformer_config(shapes, "sd3.5.safetensors") == published
    assert vae_config(shapes, "sd3.5.safetensors") == SD3_FULL_VAE
    size = "medium" if published is SD35_MEDIUM else "large"
    assert describe(published, {}).startswith(f"SD 3.5 {size}-shaped")
    # The published 3.5 medium: 24 blocks of width 1536, attn2 in blocks 0-12, 384^2 positions.
    assert shapes["model.diffusion_model.pos_embed"] == (
        1,
        published["pos_embed_max_size"] ** 2,
        64 * published["num_layers"],
    )


def test_large_turbo_is_named_from_the_metadata_with_its_settings() -> None:
    assert describe(SD35_LARGE, {"modelspec.title": "Stable Diffusion 3.5 Large Turbo"}) == (
        "SD 3.5 large turbo (38 blocks): distilled, use cfg 1 and about 4 steps; "
        "rectified flow, shift 3.0"
    )
    assert describe(SD35_LARGE, {}) == "SD 3.5 large-shaped (38 blocks); rectified flow, shift 3.0"
