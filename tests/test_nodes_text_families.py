"""The SD 3 / FLUX text nodes on tiny text encoder files in the real layouts: Encode Prompt
(SD3) and (FLUX) give what the library's encode_sd3 / encode_flux give, plain Encode Prompt
works on their CLIPs, and the CLIP loaders (Load CLIP, Dual and Triple CLIP Loader) take SD 3
and FLUX files from text_encoders/ and clip/, telling each file's role from its tensors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.handles import ClipTextEncoder, Conditioning, T5TextEncoder, TextEncoders
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.t5_clip_load import load_family_text_encoders
from latentloom.models.tiny_parts import make_tiny_clip
from latentloom.models.tiny_t5 import write_tiny_t5
from latentloom.text.t5_encode import encode_flux, encode_sd3
from tests.node_calls import builtin_registry, node_runner

CPU = torch.device("cpu")
CAT = "a photo of a cat, (sitting:1.2) on a red sofa"
SOFA = "a red sofa in an empty room"
DOG = "a dog"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root with text encoders split between text_encoders/ and clip/, as users do."""
    root = tmp_path_factory.mktemp("models")
    (root / "text_encoders").mkdir()
    (root / "clip").mkdir()
    make_tiny_clip(root / "text_encoders" / "clip_l.safetensors", layout="diffusers")
    make_tiny_clip(root / "clip" / "clip_g.safetensors", family="sdxl", tower=1)
    write_tiny_t5(root / "text_encoders" / "t5xxl.safetensors", d_model=64)
    # The names and layouts make_tiny_flux_parts gives FLUX users' files (CLIP-L as text_model.*).
    make_tiny_clip(root / "text_encoders" / "tiny-clip-l.safetensors", family="sd15")
    write_tiny_t5(root / "text_encoders" / "tiny-t5xxl.safetensors")
    save_tensors(
        root / "text_encoders" / "vae.safetensors", {"decoder.conv_in.weight": torch.ones(2)}
    )
    return root


@pytest.fixture(scope="module")
def call(root: Path) -> Callable[..., dict[str, Any]]:
    return node_runner(root)


def _files(root: Path, *names: str) -> list[Path]:
    where = {"clip_l": "text_encoders", "clip_g": "clip", "t5": "text_encoders"}
    return [
        root / where[name] / f"{'t5xxl' if name == 't5' else name}.safetensors" for name in names
    ]


@pytest.fixture(scope="module")
def sd3(root: Path) -> TextEncoders:
    paths = _files(root, "clip_l", "clip_g", "t5")
    return load_family_text_encoders(paths, "sd3", device=CPU, dtype=torch.float32)


@pytest.fixture(scope="module")
def flux(root: Path) -> TextEncoders:
    paths = _files(root, "clip_l", "t5")
    return load_family_text_encoders(paths, "flux", device=CPU, dtype=torch.float32)


def assert_same(ours: Conditioning, expected: Conditioning) -> None:
    """Bit-identical entries: same tensors, same guidance."""
    assert len(ours.entries) == len(expected.entries) == 1
    got, want = ours.first, expected.first
    assert torch.equal(got.embeds, want.embeds)
    assert got.pooled is not None and want.pooled is not None
    assert torch.equal(got.pooled, want.pooled)
    assert got.guidance == want.guidance


# --- Encode Prompt (SD3) -------------------------------------------------------------------


def test_sd3_node_gives_each_encoder_its_prompt(
    call: Callable[..., Any], sd3: TextEncoders
) -> None:
    out = call(
        "conditioning.encode_prompt_sd3",
        clip=sd3,
        clip_l=CAT,
        clip_g=SOFA,
        t5xxl=DOG,
        empty_padding="none",
        weighting="a1111",
    )["conditioning"]
    assert_same(out, encode_sd3(sd3, clip_l=CAT, clip_g=SOFA, t5xxl=DOG))
    # CLIP-L/G side by side padded to T5's 64, then T5's 77 tokens; pooled L + G.
    assert out.first.embeds.shape == (1, 77 + 77, 64)
    assert out.first.pooled.shape == (1, 32 + 32)


def test_sd3_empty_padding_none_leaves_empty_prompts_out(
    call: Callable[..., Any], sd3: TextEncoders
) -> None:
    def node(padding: str, clip_l: str, clip_g: str, t5xxl: str) -> Conditioning:
        inputs = {"clip_l": clip_l, "clip_g": clip_g, "t5xxl": t5xxl, "weighting": "comfy"}
        encoded = call("conditioning.encode_prompt_sd3", clip=sd3, empty_padding=padding, **inputs)
        return encoded["conditioning"]  # type: ignore[no-any-return]

    t5_only = node("none", "", "", CAT)
    assert_same(t5_only, encode_sd3(sd3, clip_l=None, clip_g=None, t5xxl=CAT, weighting="comfy"))
    assert t5_only.first.embeds.shape == (1, 77, 64)
    assert t5_only.first.pooled is not None and torch.count_nonzero(t5_only.first.pooled) == 0
    padded = node("empty_prompt", "", "", CAT)
    assert padded.first.embeds.shape == (1, 77 + 77, 64)
    clip_only = node("none", CAT, "", "")
    assert_same(clip_only, encode_sd3(sd3, clip_l=CAT, clip_g="", t5xxl=None, weighting="comfy"))
    assert clip_only.first.embeds.shape == (1, 77, 64)
    nothing = node("none", "", "", "")
    assert torch.count_nonzero(nothing.first.embeds) == 0
    assert nothing.first.embeds.shape == (1, 77, 64)
    # Only the empty string is empty, as in ComfyUI: a space is a prompt.
    spaced = node("none", " ", " ", " ")
    assert spaced.first.embeds.shape == (1, 77 + 77, 64)


def test_sd3_node_inputs_follow_comfyui() -> None:
    spec = builtin_registry().specs["conditioning.encode_prompt_sd3"]
    assert [i.name for i in spec.inputs] == [
        "clip",
        "clip_l",
        "clip_g",
        "t5xxl",
        "empty_padding",
        "weighting",
    ]
    padding = spec.inputs[4]
    assert (padding.choices, padding.default) == (("none", "empty_prompt"), "none")
    assert all(spec.inputs[i].multiline for i in (1, 2, 3))
    assert spec.aliases[0] == "CLIPTextEncodeSD3"
    assert spec.category == "advanced/conditioning"


# --- Encode Prompt (FLUX) ------------------------------------------------------------------


def test_flux_node_sets_guidance_on_the_entry(call: Callable[..., Any], flux: TextEncoders) -> None:
    out = call(
        "conditioning.encode_prompt_flux",
        clip=flux,
        clip_l=SOFA,
        t5xxl=CAT,
        guidance=2.5,
        weighting="a1111",
    )["conditioning"]
    assert_same(out, encode_flux(flux, clip_l=SOFA, t5xxl=CAT, guidance=2.5))
    assert out.first.guidance == 2.5
    # T5's states padded to FLUX's 256 tokens; CLIP-L's unprojected pooled vector.
    assert out.first.embeds.shape == (1, 256, 64)
    assert out.first.pooled.shape == (1, 32)


def test_flux_node_inputs_follow_comfyui() -> None:
    spec = builtin_registry().specs["conditioning.encode_prompt_flux"]
    assert [i.name for i in spec.inputs] == ["clip", "clip_l", "t5xxl", "guidance", "weighting"]
    guidance = spec.inputs[3]
    assert (guidance.default, guidance.min, guidance.max, guidance.step) == (3.5, 0.0, 100.0, 0.1)
    assert spec.aliases[0] == "CLIPTextEncodeFlux"
    assert spec.category == "advanced/conditioning/flux"


def test_a_clip_of_another_family_is_refused(
    call: Callable[..., Any], sd3: TextEncoders, flux: TextEncoders
) -> None:
    with pytest.raises(ValueError) as caught:
        call(
            "conditioning.encode_prompt_flux",
            clip=sd3,
            clip_l=CAT,
            t5xxl=CAT,
            guidance=3.5,
            weighting="a1111",
        )
    assert str(caught.value) == (
        "Encode Prompt (FLUX) takes a FLUX CLIP (CLIP-L and T5-XXL from Dual CLIP Loader with "
        f"type flux); the CLIP from {sd3.source} is SD 3.x. Use Encode Prompt for it"
    )
    with pytest.raises(ValueError) as caught:
        call(
            "conditioning.encode_prompt_sd3",
            clip=flux,
            clip_l=CAT,
            clip_g=CAT,
            t5xxl=CAT,
            empty_padding="none",
            weighting="a1111",
        )
    assert str(caught.value) == (
        "Encode Prompt (SD3) takes an SD 3 CLIP (from an SD 3.x checkpoint, Triple CLIP Loader, "
        "or Dual CLIP Loader / Load CLIP with type sd3); the CLIP from "
        f"{flux.source} is FLUX.1. Use Encode Prompt for it"
    )


# --- plain Encode Prompt -------------------------------------------------------------------


def test_plain_encode_prompt_reads_one_text_through_every_encoder(
    call: Callable[..., Any], sd3: TextEncoders, flux: TextEncoders
) -> None:
    out = call("conditioning.encode_prompt", clip=sd3, text=CAT, weighting="a1111")
    assert_same(out["conditioning"], encode_sd3(sd3, clip_l=CAT, clip_g=CAT, t5xxl=CAT))
    out = call("conditioning.encode_prompt", clip=flux, text=CAT, weighting="comfy")
    assert_same(out["conditioning"], encode_flux(flux, clip_l=CAT, t5xxl=CAT, weighting="comfy"))
    assert out["conditioning"].first.guidance is None  # the model's default


# --- the CLIP loaders ---------------------------------------------------------------------


def _roles(clip: TextEncoders) -> list[str]:
    names = []
    for encoder in clip.encoders:
        if isinstance(encoder, T5TextEncoder):
            names.append(f"t5/{encoder.min_length}")
        else:
            assert isinstance(encoder, ClipTextEncoder)
            names.append("clip_g" if encoder.pad_token_id == 0 else "clip_l")
    return names


def test_triple_clip_loader_orders_the_roles_whatever_the_file_order(
    call: Callable[..., Any], root: Path, sd3: TextEncoders
) -> None:
    clip = call(
        "loaders.triple_clip",
        text_encoder_1="t5xxl.safetensors",  # text_encoders/
        text_encoder_2="clip_g.safetensors",  # clip/
        text_encoder_3="clip_l.safetensors",
    )["clip"]
    assert clip.family.name == "sd3"
    assert _roles(clip) == ["clip_l", "clip_g", "t5/77"]
    for loaded, expected in zip(clip.encoders, sd3.encoders, strict=True):  # the same weights
        ours, theirs = loaded.model.state_dict(), expected.model.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_dual_and_single_loaders_take_sd3_and_flux_types(call: Callable[..., Any]) -> None:
    flux = call(
        "loaders.dual_clip",
        text_encoder_1="t5xxl.safetensors",
        text_encoder_2="clip_l.safetensors",
        type="flux",
    )["clip"]
    assert (flux.family.name, _roles(flux)) == ("flux", ["clip_l", "t5/256"])
    sd3 = call(
        "loaders.dual_clip",
        text_encoder_1="clip_g.safetensors",
        text_encoder_2="t5xxl.safetensors",
        type="sd3",
    )["clip"]
    assert (sd3.family.name, _roles(sd3)) == ("sd3", ["clip_g", "t5/77"])
    sdxl = call(
        "loaders.dual_clip",
        text_encoder_1="clip_l.safetensors",
        text_encoder_2="clip_g.safetensors",
        type="sdxl",
    )["clip"]
    assert (sdxl.family.name, _roles(sdxl)) == ("sdxl", ["clip_l", "clip_g"])
    t5_sd3 = call("loaders.clip", text_encoder="t5xxl.safetensors", type="sd3")["clip"]
    assert (t5_sd3.family.name, _roles(t5_sd3)) == ("sd3", ["t5/77"])
    t5_flux = call("loaders.clip", text_encoder="t5xxl.safetensors", type="flux")["clip"]
    assert (t5_flux.family.name, _roles(t5_flux)) == ("flux", ["t5/256"])
    sd15 = call("loaders.clip", text_encoder="clip_l.safetensors", type="stable_diffusion")["clip"]
    assert (sd15.family.name, _roles(sd15)) == ("sd15", ["clip_l"])


def test_loader_errors_name_the_file_and_its_role(call: Callable[..., Any], root: Path) -> None:
    with pytest.raises(ValueError) as caught:
        call(
            "loaders.dual_clip",
            text_encoder_1="clip_l.safetensors",
            text_encoder_2="t5xxl.safetensors",
            type="sdxl",
        )
    assert str(caught.value) == (
        "t5xxl.safetensors holds a T5-XXL text encoder, which type sdxl does not take (CLIP-L "
        "and CLIP-G); for SD 3.x choose type sd3, for FLUX.1 type flux"
    )
    with pytest.raises(ValueError) as caught:
        call("loaders.clip", text_encoder="t5xxl.safetensors", type="stable_diffusion")
    assert str(caught.value) == (
        "t5xxl.safetensors holds a T5-XXL text encoder, which type stable_diffusion does not "
        "take (one CLIP: SD 1.x's CLIP-L or SD 2.x's OpenCLIP ViT-H); for SD 3.x choose type "
        "sd3, for FLUX.1 type flux"
    )
    clip_l, clip_g = _files(root, "clip_l", "clip_g")
    with pytest.raises(UnrecognizedCheckpointError) as caught_file:
        call(
            "loaders.dual_clip",
            text_encoder_1="clip_l.safetensors",
            text_encoder_2="clip_g.safetensors",
            type="flux",
        )
    assert str(caught_file.value) == (
        f"{clip_l}, {clip_g}: FLUX takes CLIP-L and T5-XXL; the files hold CLIP-L, CLIP-G. "
        "Pick clip_l and t5xxl files with Dual CLIP Loader (type flux)"
    )
    with pytest.raises(UnrecognizedCheckpointError, match="a second T5-XXL file"):
        call(
            "loaders.triple_clip",
            text_encoder_1="clip_l.safetensors",
            text_encoder_2="t5xxl.safetensors",
            text_encoder_3="t5xxl.safetensors",
        )
    vae = root / "text_encoders" / "vae.safetensors"
    with pytest.raises(UnrecognizedCheckpointError) as caught_file:
        call("loaders.clip", text_encoder="vae.safetensors", type="sd3")
    assert str(caught_file.value) == (
        f"{vae}: neither a CLIP text encoder (a token embedding) nor T5 (encoder.block.0."
        "...relative_attention_bias.weight); found decoder.conv_in.weight. SD 3 takes CLIP-L, "
        "CLIP-G and T5-XXL files; FLUX takes CLIP-L and T5-XXL"
    )
    with pytest.raises(ValueError) as caught:
        call("loaders.clip", text_encoder="clip_l.safetensors", type="sdxl")
    assert str(caught.value) == "type 'sdxl' is not one of: stable_diffusion, sd3, flux"


def test_loader_inputs_follow_comfyui() -> None:
    specs = builtin_registry().specs
    names = {
        node: [(i.name, i.choices if i.name == "type" else None) for i in specs[node].inputs]
        for node in ("loaders.clip", "loaders.dual_clip", "loaders.triple_clip")
    }
    assert names == {
        "loaders.clip": [("text_encoder", None), ("type", ("stable_diffusion", "sd3", "flux"))],
        "loaders.dual_clip": [
            ("text_encoder_1", None),
            ("text_encoder_2", None),
            ("type", ("sdxl", "sd3", "flux")),
        ],
        "loaders.triple_clip": [
            ("text_encoder_1", None),
            ("text_encoder_2", None),
            ("text_encoder_3", None),
        ],
    }
    assert specs["loaders.triple_clip"].aliases[0] == "TripleCLIPLoader"


def test_the_editor_catalog_lists_both_folders_and_the_new_widgets(root: Path) -> None:
    from latentloom.catalog import catalog
    from latentloom.models.folders import ModelFolders

    folders = ModelFolders.of([root])
    listed = catalog(builtin_registry(), lambda kind: folders.list(kind) if kind == "clip" else [])
    entries = {n["id"]: n for n in listed}
    triple = entries["loaders.triple_clip"]
    assert (triple["display_name"], triple["category"]) == ("Triple CLIP Loader", "loaders")
    files = [
        "clip_g.safetensors",
        "clip_l.safetensors",
        "t5xxl.safetensors",
        "tiny-clip-l.safetensors",
        "tiny-t5xxl.safetensors",
        "vae.safetensors",
    ]
    assert [sorted(i["choices"]) for i in triple["inputs"]] == [files, files, files]
    assert entries["loaders.dual_clip"]["inputs"][2]["choices"] == ["sdxl", "sd3", "flux"]
    flux = entries["conditioning.encode_prompt_flux"]
    assert flux["inputs"][3] == {
        "name": "guidance",
        "type": "FLOAT",
        "kind": "widget",
        "required": False,  # a widget with a default
        "default": 3.5,
        "min": 0.0,
        "max": 100.0,
        "step": 0.1,
        "tooltip": "FLUX dev's guidance embedding (3.5 typical); schnell has none.",
    }
    assert [o["type"] for o in flux["outputs"]] == ["CONDITIONING"]
    sd3 = entries["conditioning.encode_prompt_sd3"]
    assert [i["name"] for i in sd3["inputs"] if i.get("multiline")] == ["clip_l", "clip_g", "t5xxl"]


def test_a_file_that_is_no_text_encoder_gets_the_clip_loader_s_own_message(
    call: Callable[..., Any], root: Path
) -> None:
    vae = root / "text_encoders" / "vae.safetensors"
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        call("loaders.clip", text_encoder="vae.safetensors", type="stable_diffusion")
    assert str(caught.value) == (
        f"{vae}: not one CLIP text encoder: expected one token embedding (text_model.embeddings."
        "token_embedding.weight or OpenCLIP's token_embedding.weight); found none"
    )


def test_flux_files_as_users_keep_them_through_dual_clip_and_encode_prompt_flux(
    call: Callable[..., Any],
) -> None:
    clip = call(
        "loaders.dual_clip",
        text_encoder_1="tiny-clip-l.safetensors",
        text_encoder_2="tiny-t5xxl.safetensors",
        type="flux",
    )["clip"]
    out = call(
        "conditioning.encode_prompt_flux",
        clip=clip,
        clip_l=CAT,
        t5xxl=CAT,
        guidance=3.5,
        weighting="comfy",
    )["conditioning"]
    assert out.first.guidance == 3.5
    # The widths the tiny FLUX transformer is built for: T5's 32 context, CLIP-L's 32 pooled.
    assert out.first.embeds.shape == (1, 256, 32)
    assert out.first.pooled.shape == (1, 32)


def test_sd3_checkpoint_clip_through_the_engine(engine: Engine) -> None:
    """The tiny SD 3 checkpoint carries CLIP-L, CLIP-G and T5 inside; the node runs in a graph."""
    document = {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {
            "checkpoint": {
                "type": "loaders.checkpoint",
                "inputs": {"checkpoint": "tiny-sd3.safetensors"},
            },
            "positive": {
                "type": "conditioning.encode_prompt_sd3",
                "inputs": {
                    "clip": {"node": "checkpoint", "output": "clip"},
                    "clip_l": CAT,
                    "clip_g": "",
                    "t5xxl": SOFA,
                },
            },
            # A workflow needs an output node; the targets below run only what they need.
            "empty": {"type": "latent.empty_sd3", "inputs": {"width": 64, "height": 64}},
            "save": {
                "type": "latent.save",
                "inputs": {"latent": {"node": "empty", "output": "latent"}},
            },
        },
    }
    result = engine.run(parse_workflow(document), targets=["positive", "checkpoint"])
    clip = result.outputs["checkpoint"]["clip"]
    assert _roles(clip) == ["clip_l", "clip_g", "t5/77"]
    # Defaults: empty_padding none (CLIP-G reads the empty prompt beside CLIP-L), a1111 weights.
    expected = encode_sd3(clip, clip_l=CAT, clip_g="", t5xxl=SOFA)
    assert_same(result.outputs["positive"]["conditioning"], expected)


def test_comfyui_flux_and_sd3_text_graphs_import_and_export() -> None:
    from latentloom.interop.comfy.api_format import import_api_prompt
    from latentloom.interop.comfy.convert import default_registry
    from latentloom.interop.comfy.exporter import export_api

    prompt = {
        "1": {
            "class_type": "DualCLIPLoader",
            "inputs": {
                "clip_name1": "l.safetensors",
                "clip_name2": "t5.safetensors",
                "type": "flux",
            },
        },
        "2": {
            "class_type": "CLIPTextEncodeFlux",
            "inputs": {"clip": ["1", 0], "clip_l": "a cat", "t5xxl": "a cat", "guidance": 4.0},
        },
        "3": {
            "class_type": "TripleCLIPLoader",
            "inputs": {"clip_name1": "l", "clip_name2": "g", "clip_name3": "t5"},
        },
    }
    imported = import_api_prompt(prompt)
    assert imported.report.unsupported == []
    nodes = imported.workflow["nodes"]
    assert (nodes["1"]["type"], nodes["1"]["inputs"]["type"]) == ("loaders.dual_clip", "flux")
    assert nodes["2"]["type"] == "conditioning.encode_prompt_flux"
    assert (nodes["2"]["inputs"]["guidance"], nodes["2"]["inputs"]["weighting"]) == (4.0, "comfy")
    assert nodes["3"]["inputs"] == {
        "text_encoder_1": "l",
        "text_encoder_2": "g",
        "text_encoder_3": "t5",
    }
    # Load CLIP's type flux is ours alone (ComfyUI's CLIPLoader has no flux): it stays home.
    ours = {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {"1": {"type": "loaders.clip", "inputs": {"text_encoder": "t5", "type": "flux"}}},
    }
    _, report = export_api(parse_workflow(ours), default_registry())
    assert [(u.node, u.reason) for u in report.unexportable] == [
        (
            "1",
            "loaders.clip: type is 'flux'; ComfyUI's CLIPLoader only does 'stable_diffusion', 'sd3'",
        )
    ]
