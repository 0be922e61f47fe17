"""SD 3.x transformer files in diffusion_models/, as users keep SD 3.5 split.

The parts are cut from the tiny SD 3 checkpoint's own tensors (so they hold exactly its
weights): the MMDiT with its `model.diffusion_model.` prefix and without it, the CLIP-L /
CLIP-G / T5 files with their `text_encoders.*.transformer.` prefixes removed (ComfyUI's
clip_l / clip_g / t5xxl files), and the VAE with `first_stage_model.` removed. Load Diffusion
Model, Triple CLIP Loader and Load VAE then give the same latent as Load Checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from safetensors.torch import load_file

from latentloom.graph.workflow import parse_workflow
from latentloom.models.component_load import load_unet
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import SD3
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.weight_dtype import weight_storage
from latentloom.sampling.model_sampling import FlowSampling
from tests.support import make_engine

CPU = torch.device("cpu")
CHECKPOINT = "tiny-sd3.safetensors"
PARTS = {  # file -> the checkpoint prefix it is cut from (removed, except for "prefixed")
    "diffusion_models/sd3-prefixed.safetensors": "model.diffusion_model.",
    "diffusion_models/sd3-bare.safetensors": "model.diffusion_model.",
    "text_encoders/clip_l.safetensors": "text_encoders.clip_l.transformer.",
    "clip/clip_g.safetensors": "text_encoders.clip_g.transformer.",
    "text_encoders/t5xxl.safetensors": "text_encoders.t5xxl.transformer.",
    "vae/sd3-vae.safetensors": "first_stage_model.",
}


@pytest.fixture(scope="module")
def root(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root holding the tiny SD 3 checkpoint and its parts cut out of it."""
    root = tmp_path_factory.mktemp("sd3-split")
    (root / "checkpoints").mkdir()
    shutil.copy(models_dir / "checkpoints" / CHECKPOINT, root / "checkpoints" / CHECKPOINT)
    tensors = load_file(models_dir / "checkpoints" / CHECKPOINT)
    for name, prefix in PARTS.items():
        keep = name.endswith("-prefixed.safetensors")
        part = {
            (key if keep else key.removeprefix(prefix)): value
            for key, value in tensors.items()
            if key.startswith(prefix)
        }
        (root / name).parent.mkdir(exist_ok=True)
        save_tensors(root / name, part)
    return root


@pytest.fixture(scope="module")
def checkpoint_weights(root: Path) -> dict[str, torch.Tensor]:
    loaded = load_checkpoint(root / "checkpoints" / CHECKPOINT, device="cpu", dtype=torch.float32)
    unet: Any = loaded.model.unet
    return dict(unet.state_dict())


@pytest.mark.parametrize("name", ["sd3-prefixed", "sd3-bare"])
def test_a_transformer_file_loads_the_checkpoint_s_weights_as_flow_shift_3(
    root: Path, checkpoint_weights: dict[str, torch.Tensor], name: str
) -> None:
    path = root / "diffusion_models" / f"{name}.safetensors"
    model = load_unet(path, device=CPU, dtype=torch.float32)
    assert model.family is SD3
    sampling = model.model_sampling
    assert isinstance(sampling, FlowSampling)
    assert (sampling.kind, sampling.shift, sampling.multiplier) == ("flow", 3.0, 1000.0)
    assert model.network_call is not None
    weights = dict(cast(Any, model.unet).state_dict())
    assert weights.keys() == checkpoint_weights.keys()
    assert all(torch.equal(weights[k], checkpoint_weights[k]) for k in weights)


def test_a_whole_checkpoint_in_diffusion_models_loads_only_its_transformer(
    root: Path, checkpoint_weights: dict[str, torch.Tensor]
) -> None:
    model = load_unet(root / "checkpoints" / CHECKPOINT, device=CPU, dtype=torch.float32)
    weights = dict(cast(Any, model.unet).state_dict())
    assert all(torch.equal(weights[k], checkpoint_weights[k]) for k in checkpoint_weights)


def test_weight_dtype_stores_the_transformer_narrow(root: Path) -> None:
    path = root / "diffusion_models" / "sd3-bare.safetensors"
    model = load_unet(
        path, device=CPU, dtype=torch.float32, weights=weight_storage("bf16", CPU, torch.float32)
    )
    unet: Any = model.unet
    # Linear weights stored in bf16, computed in fp32 on the CPU (weight_dtype.py).
    assert unet.transformer_blocks[0].attn.to_q.weight.dtype == torch.bfloat16
    assert unet.pos_embed.pos_embed.dtype == torch.float32


def test_a_file_without_an_mmdit_is_refused_by_name(root: Path) -> None:
    # Load Diffusion Model takes SD UNets, FLUX and SD 3 transformers; a VAE is none of them.
    with pytest.raises(UnrecognizedCheckpointError, match="not a UNet"):
        load_unet(root / "vae" / "sd3-vae.safetensors", device=CPU, dtype=torch.float32)


def _graph(split: bool, transformer: str = "sd3-bare.safetensors") -> dict[str, Any]:
    def link(node: str, output: str) -> dict[str, str]:
        return {"node": node, "output": output}

    if split:
        loaders: dict[str, Any] = {
            "unet": {
                "type": "loaders.unet",
                "inputs": {"unet": transformer, "weight_dtype": "default", "prediction": "auto"},
            },
            "clip": {
                "type": "loaders.triple_clip",
                "inputs": {
                    "text_encoder_1": "clip_l.safetensors",
                    "text_encoder_2": "clip_g.safetensors",
                    "text_encoder_3": "t5xxl.safetensors",
                },
            },
            "vae": {
                "type": "loaders.vae",
                "inputs": {"vae": "sd3-vae.safetensors", "family": "sd3"},
            },
        }
        model, clip, vae = link("unet", "model"), link("clip", "clip"), link("vae", "vae")
    else:
        loaders = {
            "checkpoint": {"type": "loaders.checkpoint", "inputs": {"checkpoint": CHECKPOINT}}
        }
        model, clip, vae = (link("checkpoint", o) for o in ("model", "clip", "vae"))
    prompts = {
        side: {"type": "conditioning.encode_prompt", "inputs": {"clip": clip, "text": text}}
        for side, text in (("positive", "a red fox in snow"), ("negative", "blurry"))
    }
    return {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {
            **loaders,
            **prompts,
            "latent": {
                "type": "latent.empty_sd3",
                "inputs": {"width": 64, "height": 64, "batch": 1},
            },
            "sampler": {
                "type": "sampling.ksampler",
                "inputs": {
                    "model": model,
                    "positive": link("positive", "conditioning"),
                    "negative": link("negative", "conditioning"),
                    "latent": link("latent", "latent"),
                    "seed": 3,
                    "steps": 2,
                    "cfg": 4.0,
                    "sampler": "euler",
                    "scheduler": "simple",
                    "denoise": 1.0,
                },
            },
            "decode": {
                "type": "image.vae_decode",
                "inputs": {"vae": vae, "latent": link("sampler", "latent")},
            },
            "preview": {"type": "image.preview", "inputs": {"images": link("decode", "image")}},
        },
    }


def test_split_loaders_give_the_checkpoint_s_picture(root: Path, tmp_path: Path) -> None:
    engine = make_engine(root, tmp_path / "output", tmp_path / "input")
    loaders = {False: ["checkpoint"], True: ["unet", "vae"]}
    runs = {
        split: engine.run(
            parse_workflow(_graph(split)), targets=["sampler", "decode", *loaders[split]]
        )
        for split in (False, True)
    }
    outputs = {split: run.outputs for split, run in runs.items()}
    split, whole = outputs[True], outputs[False]
    assert torch.equal(split["sampler"]["latent"].samples, whole["sampler"]["latent"].samples)
    assert torch.equal(split["decode"]["image"], whole["decode"]["image"])
    assert split["sampler"]["latent"].family is SD3
    # Load VAE's family sd3 (auto takes a 16-channel VAE for FLUX.1's AE, whose shapes are alike).
    assert split["vae"]["vae"].family is SD3
    # Both loaders report the model's sampling: flow with SD 3's shift, not an unused epsilon.
    for report in (runs[True].reports["unet"], runs[False].reports["checkpoint"]):
        (detection,) = report["detection"]
        assert (detection["family"], detection["prediction"], detection["shift"]) == (
            SD3.display_name,
            "flow",
            3.0,
        )
