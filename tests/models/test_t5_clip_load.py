"""SD 3 / FLUX text encoder files through the split loaders: roles told from the tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.handles import ClipTextEncoder, T5TextEncoder
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.t5_clip_load import load_family_text_encoders
from latentloom.models.tiny_parts import make_tiny_clip
from latentloom.models.tiny_t5 import write_tiny_t5
from latentloom.text.encode import encode_prompt

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text_encoders")
    return {
        "clip_l": make_tiny_clip(root / "clip_l.safetensors"),
        "clip_g": make_tiny_clip(root / "clip_g.safetensors", family="sdxl", tower=1),
        "t5": write_tiny_t5(root / "t5xxl.safetensors", d_model=64),
        "t5_32": write_tiny_t5(root / "t5xxl_32.safetensors"),
    }


def test_triple_sd3_orders_clip_l_clip_g_t5_whatever_the_file_order(
    files: dict[str, Path],
) -> None:
    paths = [files["t5"], files["clip_g"], files["clip_l"]]
    clip = load_family_text_encoders(paths, "sd3", device=CPU, dtype=torch.float32)
    clip_l, clip_g, t5 = clip.encoders
    assert isinstance(clip_l, ClipTextEncoder) and clip_l.pad_token_id == 49_407
    assert isinstance(clip_g, ClipTextEncoder) and clip_g.pad_token_id == 0
    assert isinstance(t5, T5TextEncoder) and t5.min_length == 77
    entry = encode_prompt(clip, "a photo of a cat").first
    assert entry.embeds.shape == (1, 77 + 77, 64) and entry.pooled is not None
    assert entry.pooled.shape == (1, 32 + 32)


def test_flux_dual_and_t5_only_sd3(files: dict[str, Path]) -> None:
    flux = load_family_text_encoders(
        [files["clip_l"], files["t5_32"]], "flux", device=CPU, dtype=torch.float32
    )
    assert [type(e) for e in flux.encoders] == [ClipTextEncoder, T5TextEncoder]
    entry = encode_prompt(flux, "a photo of a cat").first
    assert entry.embeds.shape == (1, 256, 32) and entry.pooled is not None
    assert entry.pooled.shape == (1, 32)
    sd3 = load_family_text_encoders([files["t5"]], "sd3", device=CPU, dtype=torch.float32)
    assert encode_prompt(sd3, "a cat").first.embeds.shape == (1, 77, 64)


def test_flux_without_t5_names_what_it_found(files: dict[str, Path]) -> None:
    paths = [files["clip_l"], files["clip_g"]]
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_family_text_encoders(paths, "flux", device=CPU, dtype=torch.float32)
    assert str(caught.value) == (
        f"{paths[0]}, {paths[1]}: FLUX takes CLIP-L and T5-XXL; the files hold CLIP-L, CLIP-G. "
        "Pick clip_l and t5xxl files with Dual CLIP Loader (type flux)"
    )


def test_two_t5_files_and_a_stranger_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UnrecognizedCheckpointError, match="a second T5-XXL file"):
        load_family_text_encoders(
            [files["t5"], files["t5_32"]], "sd3", device=CPU, dtype=torch.float32
        )
    stranger = tmp_path / "vae.safetensors"
    save_tensors(stranger, {"decoder.conv_in.weight": torch.zeros(2, 2)})
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_family_text_encoders([stranger], "sd3", device=CPU, dtype=torch.float32)
    assert str(caught.value) == (
        f"{stranger}: neither a CLIP text encoder (a token embedding) nor T5 (encoder.block.0."
        "...relative_attention_bias.weight); found decoder.conv_in.weight. SD 3 takes CLIP-L, "
        "CLIP-G and T5-XXL files; FLUX takes CLIP-L and T5-XXL"
    )
