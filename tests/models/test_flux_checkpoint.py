"""All-in-one FLUX.1 checkpoints through Load Checkpoint.

A tiny all-in-one file is written from the tiny separate files (transformer, CLIP-L, T5, AE
under ComfyUI's checkpoint prefixes); Load Checkpoint must give exactly the weights the
separate loaders give, and a graph on the checkpoint exactly the latent of the same graph on
the separate files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.graph.workflow import parse_workflow
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FLUX
from latentloom.models.flux_tiny import make_tiny_flux_checkpoint
from latentloom.models.handles import ClipTextEncoder, T5TextEncoder
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import save_tensors
from tests.support import load_example, make_engine

CPU = torch.device("cpu")


def same_weights(ours: Any, theirs: Any) -> None:
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize(
    ("variant", "vae_prefix"), [("dev", "vae."), ("schnell", "first_stage_model.")]
)
def test_checkpoint_holds_the_separate_files_weights(
    tmp_path: Path, models_dir: Path, variant: str, vae_prefix: str
) -> None:
    from latentloom.models.flux_model import load_flux_unet
    from latentloom.models.t5_clip_load import load_family_text_encoders
    from latentloom.models.vae_file import load_vae

    path = make_tiny_flux_checkpoint(tmp_path / "flux.safetensors", variant, vae_prefix=vae_prefix)  # type: ignore[arg-type]
    loaded = load_checkpoint(path, device="cpu", dtype=torch.float32)
    assert loaded.model.family is FLUX and loaded.vae.family is FLUX and loaded.clip.family is FLUX
    clip_l, t5 = loaded.clip.encoders
    assert isinstance(clip_l, ClipTextEncoder) and isinstance(t5, T5TextEncoder)
    assert t5.min_length == 256  # ComfyUI's FLUX length

    unet = models_dir / "diffusion_models" / f"tiny-flux-{variant}.safetensors"
    same_weights(loaded.model.unet, load_flux_unet(unet, device=CPU, dtype=torch.float32).unet)
    assert loaded.model.prediction_rule.startswith(
        "a guidance embedder" if variant == "dev" else "no guidance"
    )
    files = [models_dir / "text_encoders" / f"tiny-{n}.safetensors" for n in ("clip-l", "t5xxl")]
    separate = load_family_text_encoders(files, "flux", device=CPU, dtype=torch.float32)
    for ours, theirs in zip(loaded.clip.encoders, separate.encoders, strict=True):
        same_weights(ours.model, theirs.model)
    ae = models_dir / "vae" / "tiny-flux-ae.safetensors"
    same_weights(loaded.vae.module, load_vae(ae, device=CPU, dtype=torch.float32).vae.module)


def test_a_graph_on_the_checkpoint_equals_the_one_on_separate_files(
    tmp_path: Path, engine: Any
) -> None:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    make_tiny_flux_checkpoint(
        models / "checkpoints" / "tiny-flux-schnell-aio.safetensors", "schnell"
    )
    separate = load_example("flux_schnell.json").with_input("sampler", "steps", 2)
    expected = engine.run(separate, targets=["sampler"]).outputs["sampler"]["latent"].samples

    document = separate.to_json()
    nodes = document["nodes"]
    for name in ("model", "clip", "vae"):
        del nodes[name]
    nodes["checkpoint"] = {
        "type": "loaders.checkpoint",
        "inputs": {"checkpoint": "tiny-flux-schnell-aio.safetensors"},
    }
    for node in nodes.values():
        for name, value in node["inputs"].items():
            if isinstance(value, dict) and value.get("node") in ("model", "clip", "vae"):
                node["inputs"][name] = {"node": "checkpoint", "output": value["output"]}
    checkpoint_engine = make_engine(models, tmp_path / "output", tmp_path)
    result = checkpoint_engine.run(parse_workflow(document), targets=["sampler", "checkpoint"])
    assert torch.equal(result.outputs["sampler"]["latent"].samples, expected)
    detection = result.reports["checkpoint"]["detection"][0]
    assert detection["family"] == "FLUX.1"
    assert detection["prediction"] == "flow"
    assert detection["reason"] == "no guidance embedder (guidance_in): FLUX.1 schnell"


def test_a_checkpoint_without_its_ae_is_refused(tmp_path: Path) -> None:
    full = make_tiny_flux_checkpoint(tmp_path / "full.safetensors", "schnell")
    with SafetensorsFile(full) as file:
        kept = {key: file.read(key) for key in file if not key.startswith("vae.")}
    path = tmp_path / "no-ae.safetensors"
    save_tensors(path, kept)
    with pytest.raises(UnrecognizedCheckpointError) as caught:
        load_checkpoint(path, device="cpu", dtype=torch.float32)
    assert str(caught.value) == (
        f"{path}: a FLUX.1 transformer without its AE (no vae.* or first_stage_model.* "
        "tensors). Put the file in diffusion_models/ and load it with Load Diffusion Model, "
        "the AE with Load VAE and the text encoders with Dual CLIP Loader (type flux)"
    )
