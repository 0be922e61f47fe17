from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import EulerDiscreteScheduler
from safetensors.torch import load_file

from latentloom.models.diffusers_folder import weight_files
from latentloom.models.errors import CheckpointError, PickleCheckpointError
from latentloom.models.family import FamilyName
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_write import save_tensors
from tests.models.conftest import TinyReference
from tests.models.test_load import assert_matches_reference


def save_folder(
    reference: TinyReference, family: FamilyName, root: Path, prediction: str = "epsilon"
) -> Path:
    modules = reference(family)
    modules.unet.save_pretrained(root / "unet", safe_serialization=True)
    modules.vae.save_pretrained(root / "vae", safe_serialization=True)
    for component, model in modules.text:
        model.save_pretrained(root / component)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type=prediction,
    )  # fmt: skip
    scheduler.save_config(root / "scheduler")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return root


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_saved_pipeline_folder_loads_the_same_modules(
    tiny_reference: TinyReference, tmp_path: Path, family: FamilyName
) -> None:
    folder = save_folder(tiny_reference, family, tmp_path / family)
    checkpoint = load_checkpoint(folder, device="cpu", dtype=torch.float32)
    assert_matches_reference(checkpoint, tiny_reference(family))
    assert checkpoint.model.family.name == family
    assert checkpoint.model.prediction_type == "epsilon"
    layers = [encoder.layer for encoder in checkpoint.clip.encoders]
    # diffusers' SD 2.x text encoders already end at OpenCLIP's penultimate layer
    assert layers == {"sd15": ["last"], "sd2": ["last"], "sdxl": ["penultimate"] * 2}[family]


def test_scheduler_config_gives_the_prediction_type(
    tiny_reference: TinyReference, tmp_path: Path
) -> None:
    folder = save_folder(tiny_reference, "sd2", tmp_path / "v", prediction="v_prediction")
    checkpoint = load_checkpoint(folder, device="cpu", dtype=torch.float32)
    assert checkpoint.model.prediction_type == "v_prediction"


def test_transformers_4_text_names_shards_and_fp16_variants(
    tiny_reference: TinyReference, tmp_path: Path
) -> None:
    folder = save_folder(tiny_reference, "sd15", tmp_path / "old")
    text_file = folder / "text_encoder" / "model.safetensors"
    old_names = {f"text_model.{key}": value for key, value in load_file(text_file).items()}
    old_names["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    save_tensors(text_file, old_names)
    unet_file = folder / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(unet_file)
    names = sorted(tensors)
    middle = len(names) // 2
    halves = {"part-1.safetensors": names[:middle], "part-2.safetensors": names[middle:]}
    for shard, keys in halves.items():
        save_tensors(folder / "unet" / shard, {key: tensors[key] for key in keys})
    index = {"weight_map": {key: shard for shard, keys in halves.items() for key in keys}}
    (folder / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps(index)
    )
    unet_file.unlink()
    vae_file = folder / "vae" / "diffusion_pytorch_model.safetensors"
    vae_file.rename(vae_file.with_name("diffusion_pytorch_model.fp16.safetensors"))
    checkpoint = load_checkpoint(folder, device="cpu", dtype=torch.float32)
    assert_matches_reference(checkpoint, tiny_reference("sd15"))


def test_pickle_weights_in_a_folder_are_refused(
    tiny_reference: TinyReference, tmp_path: Path
) -> None:
    folder = save_folder(tiny_reference, "sd15", tmp_path / "bin")
    (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    pickle_file = folder / "vae" / "diffusion_pytorch_model.bin"
    pickle_file.write_bytes(b"\x80\x02}q\x00.")  # never opened
    with pytest.raises(PickleCheckpointError) as caught:
        load_checkpoint(folder, device="cpu", dtype=torch.float32)
    assert str(caught.value) == (
        f"{pickle_file}: diffusers folder weights are pickle (.bin). Latentloom never "
        "unpickles weights. Re-save the folder once with "
        "`pipeline.save_pretrained(folder, safe_serialization=True)` in a Python you trust"
    )


def test_folder_without_model_index(tiny_reference: TinyReference, tmp_path: Path) -> None:
    folder = save_folder(tiny_reference, "sd15", tmp_path / "noindex")
    (folder / "model_index.json").unlink()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(folder, device="cpu", dtype=torch.float32)
    index = folder / "model_index.json"
    assert str(caught.value) == f"{index}: missing; a diffusers folder needs it"


def write_index(folder: Path, weight_map: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": weight_map}))
    return index


@pytest.mark.parametrize(
    "shard",
    [
        "../../secret.safetensors",
        "/etc/secret.safetensors",
        "sub/part.safetensors",
        "..\\secret.safetensors",
        "C:secret.safetensors",
        "part.bin",
        ".hidden.safetensors",
        ["part.safetensors"],
    ],
)
def test_shard_index_entries_may_not_leave_their_folder(tmp_path: Path, shard: object) -> None:
    (tmp_path / "secret.safetensors").write_bytes(b"never opened")
    index = write_index(tmp_path / "model" / "unet", {"a.weight": shard})
    with pytest.raises(CheckpointError) as caught:
        weight_files(index.parent)
    assert str(caught.value) == (
        f"{index}: weight_map names the shard {str(shard)!r}; shards must be .safetensors "
        "files beside the index, named without folders"
    )


def test_shard_index_missing_shards_and_a_bad_map(tmp_path: Path) -> None:
    index = write_index(tmp_path / "unet", {"a.weight": "part-1.safetensors"})
    with pytest.raises(CheckpointError) as caught:
        weight_files(index.parent)
    assert str(caught.value) == f"{index}: the shard 'part-1.safetensors' it lists is missing"
    index = write_index(tmp_path / "unet", ["part-1.safetensors"])
    with pytest.raises(CheckpointError) as caught:
        weight_files(index.parent)
    assert str(caught.value) == f"{index}: weight_map must map tensor names to shard file names"


def test_a_shard_may_be_a_link_to_a_download_cache(tmp_path: Path) -> None:
    blob = tmp_path / "blobs" / "3f2a9c"
    blob.parent.mkdir()
    save_tensors(blob, {"a.weight": torch.ones(2)})
    index = write_index(tmp_path / "snapshot" / "unet", {"a.weight": "part.safetensors"})
    (index.parent / "part.safetensors").symlink_to(blob)
    assert weight_files(index.parent) == [index.parent / "part.safetensors"]
