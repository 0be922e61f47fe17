"""Tiny component files for tests and the demo: a VAE, a UNet or a text encoder on its own, and
textual-inversion embeddings, in each layout users meet.

Components are cut from the same seeded modules as the tiny checkpoints (`tiny.py`), so a part
written here loads into exactly the weights of `make_tiny_checkpoint(family, seed=seed)`:
- "original": the checkpoint's names with the component's prefix removed, as ComfyUI's
  ModelSave / CLIPSave / VAE files write them (`input_blocks.*`, `encoder.down.*`, CLIP-L as
  `text_model.*`, OpenCLIP towers as `transformer.resblocks.*`);
- "prefixed": the checkpoint's names as they are (`first_stage_model.*`, `model.diffusion_model.*`);
- "diffusers": diffusers / transformers names (`encoder.down_blocks.*`, `down_blocks.*`, CLIP
  towers as transformers saves them, with the `text_model.` root of transformers 4 files).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Literal, cast

import torch
from torch import nn

from latentloom.models.export import original_tensors, to_original_layout
from latentloom.models.family import FamilyName
from latentloom.models.layout import TEXT_TOWERS, UNET_PREFIX, VAE_PREFIX, Component
from latentloom.models.safetensors_write import save_tensors
from latentloom.models.tiny import keymap_for, tiny_modules

Layout = Literal["original", "prefixed", "diffusers"]
STORAGE = torch.float16


@functools.lru_cache(maxsize=4)
def _original_state(family: FamilyName, seed: int) -> dict[str, torch.Tensor]:
    modules = tiny_modules(family, seed=seed)
    components = modules.components()
    states = {name: module.state_dict() for name, module in components.items()}
    return {
        item.name: to_original_layout(item, [states[c][k] for c, k in item.parts]).to(STORAGE)
        for item in original_tensors(components, keymap_for(family, modules))
    }


def _diffusers_state(
    family: FamilyName, seed: int, component: Component
) -> dict[str, torch.Tensor]:
    module = tiny_modules(family, seed=seed).components()[component]
    return {key: value.to(STORAGE) for key, value in cast(nn.Module, module).state_dict().items()}


def _cut(family: FamilyName, seed: int, prefix: str, keep_prefix: bool) -> dict[str, torch.Tensor]:
    state = _original_state(family, seed)
    return {
        (key if keep_prefix else key[len(prefix) :]): value
        for key, value in state.items()
        if key.startswith(prefix)
    }


def make_tiny_vae(
    path: Path, *, family: FamilyName = "sd15", layout: Layout = "original", seed: int = 0
) -> Path:
    """A VAE file; `layout="diffusers"` with a path not ending in .safetensors makes a folder."""
    if layout != "diffusers":
        save_tensors(path, _cut(family, seed, VAE_PREFIX, layout == "prefixed"))
        return path
    state = _diffusers_state(family, seed, "vae")
    if path.suffix == ".safetensors":
        save_tensors(path, state)
        return path
    path.mkdir(parents=True, exist_ok=True)
    module = tiny_modules(family, seed=seed).vae
    config = {"_class_name": "AutoencoderKL", **dict(module.config)}  # type: ignore[attr-defined]
    (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_tensors(path / "diffusion_pytorch_model.safetensors", state)
    return path


def make_tiny_unet(
    path: Path, *, family: FamilyName = "sd15", layout: Layout = "original", seed: int = 0
) -> Path:
    if layout == "diffusers":
        save_tensors(path, _diffusers_state(family, seed, "unet"))
    else:
        save_tensors(path, _cut(family, seed, UNET_PREFIX, layout == "prefixed"))
    return path


def make_tiny_clip(
    path: Path,
    *,
    family: FamilyName = "sd15",
    tower: int = 0,
    layout: Layout = "original",
    seed: int = 0,
) -> Path:
    """One text tower (`tower` 1: SDXL's OpenCLIP bigG)."""
    text = TEXT_TOWERS[family][tower]
    if layout != "diffusers":
        save_tensors(path, _cut(family, seed, text.prefix, layout == "prefixed"))
        return path
    state = _diffusers_state(family, seed, text.component)
    # transformers 4 saved every tower under `text_model.`, as downloaded files still are.
    save_tensors(
        path,
        {
            (key if key.startswith(("text_model.", "text_projection")) else "text_model." + key): v
            for key, v in state.items()
            if not key.endswith("position_ids")
        },
    )
    return path


def make_tiny_embedding(
    path: Path,
    *,
    family: FamilyName = "sd15",
    vectors: int = 2,
    seed: int = 0,
    layout: Literal["emb_params", "a1111"] = "emb_params",
) -> Path:
    """Random token vectors as wide as the tiny text towers (SDXL: `clip_l` and `clip_g`)."""
    generator = torch.Generator().manual_seed(seed)
    widths = [
        _original_state(family, 0)[
            text.prefix
            + (
                "text_model.embeddings.token_embedding.weight"
                if text.layout == "hf_clip"
                else "token_embedding.weight"
            )
        ].shape[1]
        for text in TEXT_TOWERS[family]
    ]
    rows = [torch.randn(vectors, width, generator=generator) * 0.02 for width in widths]
    if family == "sdxl":
        tensors = {"clip_l": rows[0], "clip_g": rows[1]}
    else:
        tensors = {"emb_params" if layout == "emb_params" else "string_to_param.*": rows[0]}
    save_tensors(path, tensors)
    return path


EXAMPLE_VAE = "tiny-vae.safetensors"
EXAMPLE_EMBEDDINGS = ("tiny-embedding.safetensors", "tiny-embedding-sdxl.safetensors")


def make_example_parts(root: Path) -> list[Path]:
    """What the example workflows name besides checkpoints and LoRAs, under a model root: a
    standalone VAE (seeded apart from the checkpoint's, so using it shows) and embeddings."""
    made = [make_tiny_vae(_folder(root, "vae") / EXAMPLE_VAE, seed=1)]
    families: tuple[FamilyName, ...] = ("sd15", "sdxl")
    for name, family in zip(EXAMPLE_EMBEDDINGS, families, strict=True):
        made.append(make_tiny_embedding(_folder(root, "embeddings") / name, family=family))
    return made


def make_split_parts(root: Path) -> list[Path]:
    """The tiny checkpoints' UNets and text encoders as separate files (`unet/`, `clip/`)."""
    unet, clip = _folder(root, "unet"), _folder(root, "clip")
    return [
        make_tiny_unet(unet / "tiny-unet-sd15.safetensors"),
        make_tiny_unet(unet / "tiny-unet-sdxl.safetensors", family="sdxl"),
        make_tiny_clip(clip / "tiny-clip-sd15.safetensors"),
        make_tiny_clip(clip / "tiny-clip-l-sdxl.safetensors", family="sdxl"),
        make_tiny_clip(clip / "tiny-clip-g-sdxl.safetensors", family="sdxl", tower=1),
    ]


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
