"""Load a UNet or text encoder saved on its own (Load Diffusion Model, Load CLIP, Dual CLIP Loader).

Split checkpoints come in the layouts ComfyUI's ModelSave / CLIPSave write (a checkpoint's
names with the component prefix removed) and the diffusers / transformers layouts users
download; any checkpoint prefix left on the names is accepted too. Every layout is mapped onto
the single-file machinery instead of a parallel one: names are put back under the checkpoint
prefix so that config derivation (`configs.py`) and the key map (`keymap.py`) read them as they
read a checkpoint; diffusers UNet names are first mapped to original names by the inverse map
(`KeyMap.to_original`), which only needs the resnets per level and which up blocks attend.

UNet alone, the facts a checkpoint's text encoder would give are read from the UNet:
- family: SDXL has the `label_emb` extra conditioning; otherwise a linear `proj_in` is SD 2.x
  and a convolutional one SD 1.x (as `REFERENCE.md` tabulates);
- SDXL's pooled text width (part of `label_emb`'s input): the context width minus CLIP-L's
  (768 in SDXL; in our miniature models, whose two towers are equally wide, half the context);
- prediction type: `detect.py`'s rules (a `v_pred` key, metadata, SD 2.x's weight tell-tale),
  else epsilon; noise schedule: SD's default scaled-linear schedule (1000 steps).

Text towers: Hugging Face CLIP names (`text_model.encoder.layers.*`, CLIP-L and the towers
transformers saves) or OpenCLIP names (`transformer.resblocks.*`, SD 2.x's ViT-H and SDXL's
bigG in the original layout). Which family and tower a file is comes from the loader's `type`
and the width (768 CLIP-L, 1024 ViT-H, 1280 bigG); equally wide miniature towers go by order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import torch
from torch import nn

from latentloom.models.build import empty_text_model, empty_unet, text_root
from latentloom.models.configs import clip_config, unet_config
from latentloom.models.detect import (
    NO_MARKER,
    Detection,
    detect_prediction_type,
    prediction_from_weights,
)
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES, SD2, SD15, SDXL, Family
from latentloom.models.flux_keys import flux_prefix
from latentloom.models.handles import (
    ClipTextEncoder,
    DiffusionModel,
    PredictionType,
    TextEncoders,
)
from latentloom.models.keymap import KeyMap, Target
from latentloom.models.layout import TEXT_TOWERS, UNET_PREFIX, Component, TextTower
from latentloom.models.load import overridden
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.schedule import alphas_cumprod
from latentloom.models.sd3_keys import sd3_transformer_prefix
from latentloom.models.streaming import ModuleFiller, Transfer, rehearse, stream
from latentloom.models.weight_dtype import WeightStorage

ClipType = Literal["stable_diffusion", "sdxl"]
CLIP_TYPES: tuple[ClipType, ...] = ("stable_diffusion", "sdxl")
CLIP_L_WIDTH, VIT_H_WIDTH, BIG_G_WIDTH = 768, 1024, 1280
_STUB_VAE = {"block_out_channels": [0]}  # the key map's VAE half is not consulted here


def _fill(
    component: Component,
    module: nn.Module,
    transfers: list[Transfer],
    path: Path,
    device: torch.device,
    dtype: torch.dtype | WeightStorage,
) -> None:
    filler = ModuleFiller(component, module)
    rehearse(transfers, {component: filler}, path)
    stream(transfers, {component: filler}, device, {component: dtype})


# --- UNet --------------------------------------------------------------------------------


class _PrefixedReader:
    """The open file read through checkpoint names (for `detect.prediction_from_weights`)."""

    def __init__(self, file: SafetensorsFile, keys: Mapping[str, str]) -> None:
        self.file, self.keys = file, keys

    def shape(self, key: str) -> tuple[int, ...]:
        return self.file.shape(self.keys[key])

    def read(self, key: str) -> torch.Tensor:
        return self.file.read(self.keys[key])


def unet_family(shapes: Mapping[str, tuple[int, ...]]) -> Family:
    """SDXL by its extra conditioning, else SD 2.x by a linear proj_in, else SD 1.x."""
    if UNET_PREFIX + "label_emb.0.0.weight" in shapes:
        return SDXL
    projections = [shape for key, shape in shapes.items() if key.endswith(".1.proj_in.weight")]
    return SD2 if projections and len(projections[0]) == 2 else SD15


def _sdxl_pooled_width(shapes: Mapping[str, tuple[int, ...]]) -> int:
    context = next(shape[1] for key, shape in shapes.items() if key.endswith("attn2.to_k.weight"))
    return context - CLIP_L_WIDTH if context > CLIP_L_WIDTH else context // 2


def _unet_original_names(keys: Sequence[str], path: Path) -> tuple[dict[str, str], bool]:
    """Checkpoint name -> file key for every UNet tensor, and whether the file is diffusers'."""
    if UNET_PREFIX + "input_blocks.0.0.weight" in keys:
        return {key: key for key in keys if key.startswith(UNET_PREFIX)}, False
    if "input_blocks.0.0.weight" in keys:
        return {UNET_PREFIX + key: key for key in keys}, False
    if "conv_in.weight" in keys:
        return _diffusers_unet_names(keys), True
    shown = ", ".join(sorted(keys)[:6]) or "no tensors"
    raise UnrecognizedCheckpointError(
        path,
        "not a UNet: expected input_blocks.* (original layout, optionally under "
        f"model.diffusion_model.) or conv_in/down_blocks.* (diffusers layout); found {shown}",
    )


def _indices(keys: Sequence[str], prefix: str) -> list[int]:
    found = {key[len(prefix) :].split(".", 1)[0] for key in keys if key.startswith(prefix)}
    return sorted(int(head) for head in found if head.isdigit())


def _diffusers_unet_names(keys: Sequence[str]) -> dict[str, str]:
    levels = _indices(keys, "up_blocks.")
    attends = [
        any(key.startswith(f"up_blocks.{level}.attentions.") for key in keys) for level in levels
    ]
    structure = {
        "layers_per_block": len(_indices(keys, "down_blocks.0.resnets.")),
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in attends],
    }
    keymap = KeyMap(SD15, structure, _STUB_VAE, {})  # the UNet map does not depend on family
    return {keymap.to_original("unet", key).key: key for key in keys}


def _unet_detection(
    file: SafetensorsFile, names: Mapping[str, str], family: Family, path: Path
) -> Detection:
    # The v_pred marker sits outside the UNet's names.
    declared = detect_prediction_type([*names, *file.keys()], file.metadata, path)
    if declared is None and family is SD2:
        declared = prediction_from_weights(list(names), _PrefixedReader(file, names))
    prediction, rule = declared or ("epsilon", NO_MARKER)
    return Detection(family=family, prediction_type=prediction, prediction_rule=rule)


def load_unet(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    prediction_type: PredictionType | None = None,
    weights: WeightStorage | None = None,
) -> DiffusionModel:
    """A UNet file (original or diffusers names) as a MODEL handle; see the module docstring.

    `weights`: storage and compute dtypes (`weight_dtype.py`); None: everything in `dtype`.
    """
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        flux = flux_prefix(file.keys()) is not None
        sd3 = sd3_transformer_prefix(file.keys()) is not None
    if flux:  # a FLUX.1 transformer (models/flux_model.py)
        from latentloom.models.flux_model import load_flux_unet

        return load_flux_unet(path, device=device, dtype=weights or dtype)
    if sd3:  # an SD 3.x MMDiT (models/sd3_unet_file.py): flow with shift 3, no prediction choice
        from latentloom.models.sd3_unet_file import load_sd3_unet

        return load_sd3_unet(path, device=device, dtype=weights or dtype)
    with SafetensorsFile(path) as file:
        names, diffusers = _unet_original_names(file.keys(), path)
        shapes = {name: file.shape(key) for name, key in names.items()}
        family = unet_family(shapes)
        detection = overridden(_unet_detection(file, names, family, path), prediction_type)
        pooled = _sdxl_pooled_width(shapes) if family is SDXL else None
        config = unet_config(shapes, detection, pooled, path)
        keymap = KeyMap(family, config, _STUB_VAE, {})
        transfers = []
        for name, key in names.items():
            target = Target("unet", (key,), "copy") if diffusers else keymap.to_diffusers(name)
            if target is not None:
                transfers.append(Transfer(file, key, target))
        unet = empty_unet(config)
        _fill("unet", cast(nn.Module, unet), transfers, path, device, weights or dtype)
    return DiffusionModel(
        unet=unet,
        family=family,
        prediction_type=detection.prediction_type,
        alphas_cumprod=alphas_cumprod(),
        source=str(path),
        prediction_rule=detection.prediction_rule,
    )


# --- text encoders -----------------------------------------------------------------------


@dataclass(frozen=True)
class _TowerFile:
    """One text tower's file: its layout, where its names start, and how wide it is."""

    path: Path
    layout: Literal["hf_clip", "open_clip"]
    prefix: str  # before `embeddings.` (HF) or `token_embedding` (OpenCLIP)
    width: int
    layers: int


def _tower_file(file: SafetensorsFile, path: Path) -> _TowerFile:
    keys = file.keys()
    hf = [key for key in keys if key.endswith("embeddings.token_embedding.weight")]
    open_clip = [key for key in keys if key.endswith("token_embedding.weight") and key not in hf]
    if len(hf) + len(open_clip) != 1:
        found = f"{len(hf) + len(open_clip)} token embeddings" if hf or open_clip else "none"
        raise UnrecognizedCheckpointError(
            path,
            "not one CLIP text encoder: expected one token embedding (text_model.embeddings."
            f"token_embedding.weight or OpenCLIP's token_embedding.weight); found {found}",
        )
    if hf:
        prefix = hf[0].removesuffix("embeddings.token_embedding.weight")
        layers = _indices(keys, prefix + "encoder.layers.")
        return _TowerFile(path, "hf_clip", prefix, file.shape(hf[0])[1], len(layers))
    prefix = open_clip[0].removesuffix("token_embedding.weight")
    layers = _indices(keys, prefix + "transformer.resblocks.")
    return _TowerFile(path, "open_clip", prefix, file.shape(open_clip[0])[1], len(layers))


def _roles(files: Sequence[_TowerFile], kind: ClipType) -> list[TextTower]:
    """The family tower each file is (see the module docstring)."""
    if kind == "stable_diffusion":
        if len(files) != 1:
            raise ValueError("type stable_diffusion takes one text encoder file")
        (tower,) = files
        if tower.width == BIG_G_WIDTH:
            raise UnrecognizedCheckpointError(
                tower.path,
                "a 1280-wide OpenCLIP bigG tower is SDXL's second text encoder",
                "Load it with Dual CLIP Loader (type sdxl) beside a CLIP-L file",
            )
        is_sd2 = tower.layout == "open_clip" or tower.width == VIT_H_WIDTH
        return [TEXT_TOWERS["sd2" if is_sd2 else "sd15"][0]]
    if len(files) != 2:
        raise ValueError("type sdxl takes two text encoder files: CLIP-L and CLIP-G")
    big_g = [f.layout == "open_clip" or f.width == BIG_G_WIDTH for f in files]
    clip_l = [f.width == CLIP_L_WIDTH for f in files]
    second_is_l = clip_l[1] or big_g[0]  # otherwise they are taken in the order given
    if (big_g[0] and big_g[1]) or (clip_l[0] and clip_l[1]):
        both = "CLIP-G (OpenCLIP bigG)" if big_g[0] else "CLIP-L"
        raise UnrecognizedCheckpointError(
            files[1].path,
            f"both files are {both}; SDXL needs one CLIP-L and one CLIP-G",
        )
    l_tower, g_tower = TEXT_TOWERS["sdxl"]
    return [g_tower, l_tower] if second_is_l else [l_tower, g_tower]


def _tower_transfers(
    file: SafetensorsFile, found: _TowerFile, tower: TextTower, family: Family, root: str
) -> list[Transfer]:
    transfers = []
    outer = found.prefix.removesuffix("text_model.")
    structure = {"layers_per_block": 1, "up_block_types": []}  # the UNet half is not used
    keymap = KeyMap(family, structure, _STUB_VAE, {tower.component: root})
    for key in file:
        if found.layout == "open_clip" and key.startswith(found.prefix):
            target: Target | None = keymap.to_diffusers(tower.prefix + key[len(found.prefix) :])
        elif key.startswith(found.prefix):
            rest = key[len(found.prefix) :]
            ignored = rest == "embeddings.position_ids"
            target = Target(tower.component, () if ignored else (root + rest,), "copy")
        elif key == outer + "text_projection.weight":
            keys = ("text_projection.weight",) if tower.with_projection else ()
            target = Target(tower.component, keys, "copy")
        else:
            target = None  # logit_scale and other CLIP-model extras
        if target is not None:
            transfers.append(Transfer(file, key, target))
    return transfers


def _load_tower(
    file: SafetensorsFile,
    found: _TowerFile,
    tower: TextTower,
    family: Family,
    device: torch.device,
    dtype: torch.dtype | WeightStorage,
) -> ClipTextEncoder:
    from latentloom.text.tokenizer import clip_tokenizer

    outer = found.prefix.removesuffix("text_model.") if found.layout == "hf_clip" else found.prefix
    shapes = file.shapes()
    read_as = TextTower(
        component=tower.component,
        prefix=outer,
        layout=found.layout,
        with_projection=tower.with_projection and found.layout == "open_clip",
        layer=tower.layer,
        final_norm_on_penultimate=tower.final_norm_on_penultimate,
        pad_token=tower.pad_token,
        pad_token_id=tower.pad_token_id,
    )
    config = clip_config(shapes, read_as, found.path)
    config.hidden_act = "quick_gelu" if tower.layout == "hf_clip" else "gelu"
    if tower.with_projection and found.layout == "hf_clip":
        config.projection_dim = shapes[outer + "text_projection.weight"][0]
    model = empty_text_model(config, tower.with_projection)
    transfers = _tower_transfers(file, found, tower, family, text_root(model))
    _fill(tower.component, model, transfers, found.path, device, dtype)
    # Diffusers' SD 2.x text encoder stops one layer short already (see diffusers_folder.py).
    layer = "last" if family is SD2 and found.layers == 23 else tower.layer
    return ClipTextEncoder(
        model=model,
        tokenizer=clip_tokenizer(tower.pad_token),
        layer=layer,
        final_norm_on_penultimate=tower.final_norm_on_penultimate,
        pad_token_id=tower.pad_token_id,
    )


def load_text_encoders(
    paths: Sequence[Path],
    kind: ClipType,
    *,
    device: torch.device,
    dtype: torch.dtype,
    weights: WeightStorage | None = None,
) -> TextEncoders:
    """Text encoder files as a CLIP handle: one for stable_diffusion, CLIP-L + CLIP-G for sdxl.

    `weights`: storage and compute dtypes (`weight_dtype.py`); None: everything in `dtype`.
    """
    if kind not in CLIP_TYPES:
        raise ValueError(f"type {kind!r} is not one of: {', '.join(CLIP_TYPES)}")
    for path in paths:
        refuse_pickle_path(path)
    with ExitStack() as stack:
        files = [stack.enter_context(SafetensorsFile(path)) for path in paths]
        found = [_tower_file(file, path) for file, path in zip(files, paths, strict=True)]
        towers = _roles(found, kind)
        is_sd2 = kind == "stable_diffusion" and towers[0] is TEXT_TOWERS["sd2"][0]
        family = FAMILIES["sdxl" if kind == "sdxl" else "sd2" if is_sd2 else "sd15"]
        loaded = {
            tower.component: _load_tower(file, item, tower, family, device, weights or dtype)
            for file, item, tower in zip(files, found, towers, strict=True)
        }
    encoders = tuple(loaded[tower.component] for tower in TEXT_TOWERS[family.name])
    return TextEncoders(family=family, encoders=encoders, source=", ".join(map(str, paths)))
