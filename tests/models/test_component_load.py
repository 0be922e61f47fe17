"""Split checkpoints: a UNet or text encoder file, in each layout, loads exactly the weights of the
checkpoint it was cut from, with the family, prediction type and text settings it would have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.component_load import _roles, _TowerFile, load_text_encoders, load_unet
from latentloom.models.detect import NO_MARKER
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FamilyName
from latentloom.models.handles import Checkpoint
from latentloom.models.load import load_checkpoint
from latentloom.models.tiny_parts import make_tiny_clip, make_tiny_unet, make_tiny_vae
from latentloom.text.encode import encode_prompt
from tests.models.conftest import TinyFile

CPU = torch.device("cpu")
LAYOUTS = ["original", "prefixed", "diffusers"]


@pytest.fixture(scope="module")
def checkpoints(tiny_file: TinyFile) -> dict[str, Checkpoint]:
    return {
        family: load_checkpoint(tiny_file(family), device="cpu", dtype=None)
        for family in ("sd15", "sd2", "sdxl")
    }


def assert_same_weights(ours: Any, theirs: Any) -> None:
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(mine[key], value), key


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_unet_file_loads_the_checkpoints_unet(
    tmp_path: Path, checkpoints: dict[str, Checkpoint], family: FamilyName, layout: str
) -> None:
    path = make_tiny_unet(tmp_path / "unet.safetensors", family=family, layout=layout)  # type: ignore[arg-type]
    model = load_unet(path, device=CPU, dtype=torch.float32)
    assert model.family.name == family
    assert model.unet.config.in_channels == 4  # type: ignore[attr-defined]
    assert_same_weights(model.unet, checkpoints[family].model.unet)
    assert torch.equal(model.alphas_cumprod, checkpoints[family].model.alphas_cumprod)


def test_a_unet_is_epsilon_unless_it_says_otherwise(tmp_path: Path, tiny_file: TinyFile) -> None:
    plain = load_unet(make_tiny_unet(tmp_path / "u.safetensors"), device=CPU, dtype=torch.float32)
    assert (plain.prediction_type, plain.prediction_rule) == ("epsilon", NO_MARKER)
    # A whole checkpoint loads as a UNet too; its v_pred marker still counts.
    marked = load_unet(tiny_file("sd2", v_prediction=True), device=CPU, dtype=torch.float32)
    assert (marked.prediction_type, marked.prediction_rule) == (
        "v_prediction",
        "the file has a 'v_pred' key",
    )
    chosen = load_unet(
        tmp_path / "u.safetensors", device=CPU, dtype=torch.float32, prediction_type="v_prediction"
    )
    assert chosen.prediction_type == "v_prediction"
    assert chosen.prediction_rule == f"set by the caller (detected epsilon: {NO_MARKER})"


# A diffusers-layout SD 2.x tower is told from CLIP-L by its width (1024), which the miniature
# towers do not have: see test_towers_are_told_apart_by_width.
@pytest.mark.parametrize(
    ("family", "layout"),
    [*((("sd15", x)) for x in LAYOUTS), ("sd2", "original"), ("sd2", "prefixed")],
)
def test_a_clip_file_encodes_like_the_checkpoint(
    tmp_path: Path, checkpoints: dict[str, Checkpoint], family: FamilyName, layout: str
) -> None:
    path = make_tiny_clip(tmp_path / "clip.safetensors", family=family, layout=layout)  # type: ignore[arg-type]
    clip = load_text_encoders([path], "stable_diffusion", device=CPU, dtype=torch.float32)
    reference = checkpoints[family].clip
    assert clip.family.name == family
    (ours,), (theirs,) = clip.encoders, reference.encoders
    assert (ours.layer, ours.pad_token_id) == (theirs.layer, theirs.pad_token_id)
    assert_same_weights(ours.model, theirs.model)
    prompt = "a photo of a cat"
    assert torch.equal(
        encode_prompt(clip, prompt).first.embeds, encode_prompt(reference, prompt).first.embeds
    )


@pytest.mark.parametrize(
    ("layouts", "swapped"),
    [
        (("original", "original"), False),
        (("diffusers", "diffusers"), False),
        (("original", "original"), True),
    ],
)
def test_dual_clip_builds_sdxl_from_clip_l_and_clip_g(
    tmp_path: Path, checkpoints: dict[str, Checkpoint], layouts: tuple[str, str], swapped: bool
) -> None:
    paths = [
        make_tiny_clip(tmp_path / f"{n}.safetensors", family="sdxl", tower=i, layout=layout)  # type: ignore[arg-type]
        for i, (n, layout) in enumerate(zip(("l", "g"), layouts, strict=True))
    ]
    if swapped:  # an OpenCLIP-layout bigG is known as such, whichever slot it is in
        paths.reverse()
    clip = load_text_encoders(paths, "sdxl", device=CPU, dtype=torch.float32)
    reference = checkpoints["sdxl"].clip
    assert clip.family.name == "sdxl"
    for ours, theirs in zip(clip.encoders, reference.encoders, strict=True):
        assert_same_weights(ours.model, theirs.model)
    ours_encoded, theirs_encoded = encode_prompt(clip, "a hill"), encode_prompt(reference, "a hill")
    assert torch.equal(ours_encoded.first.embeds, theirs_encoded.first.embeds)
    assert ours_encoded.first.pooled is not None and theirs_encoded.first.pooled is not None
    assert torch.equal(ours_encoded.first.pooled, theirs_encoded.first.pooled)


def test_two_clip_g_files_are_refused(tmp_path: Path) -> None:
    paths = [make_tiny_clip(tmp_path / f"g{n}.safetensors", family="sdxl", tower=1) for n in (1, 2)]
    with pytest.raises(UnrecognizedCheckpointError) as raised:
        load_text_encoders(paths, "sdxl", device=CPU, dtype=torch.float32)
    assert str(raised.value) == (
        f"{paths[1]}: both files are CLIP-G (OpenCLIP bigG); SDXL needs one CLIP-L and one CLIP-G"
    )


def test_a_vae_is_neither_a_unet_nor_a_clip(tmp_path: Path) -> None:
    path = make_tiny_vae(tmp_path / "vae.safetensors")
    with pytest.raises(UnrecognizedCheckpointError, match="not a UNet: expected input_blocks"):
        load_unet(path, device=CPU, dtype=torch.float32)
    with pytest.raises(UnrecognizedCheckpointError) as raised:
        load_text_encoders([path], "stable_diffusion", device=CPU, dtype=torch.float32)
    assert str(raised.value) == (
        f"{path}: not one CLIP text encoder: expected one token embedding (text_model.embeddings."
        "token_embedding.weight or OpenCLIP's token_embedding.weight); found none"
    )


@pytest.mark.parametrize(
    ("widths", "layouts", "kind", "expected"),
    [
        ((1024,), ("hf_clip",), "stable_diffusion", ["cond_stage_model.model."]),
        ((768,), ("hf_clip",), "stable_diffusion", ["cond_stage_model.transformer."]),
        (
            (1280, 768),
            ("hf_clip", "hf_clip"),
            "sdxl",
            ["conditioner.embedders.1.model.", "conditioner.embedders.0.transformer."],
        ),
        (
            (32, 32),
            ("hf_clip", "hf_clip"),
            "sdxl",
            ["conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."],
        ),
    ],
)
def test_towers_are_told_apart_by_width(
    widths: tuple[int, ...], layouts: tuple[str, ...], kind: str, expected: list[str]
) -> None:
    files = [
        _TowerFile(Path(f"{n}.safetensors"), layout, "", width, 12)  # type: ignore[arg-type]
        for n, (width, layout) in enumerate(zip(widths, layouts, strict=True))
    ]
    assert [tower.prefix for tower in _roles(files, kind)] == expected  # type: ignore[arg-type]
