"""Text encoder files for SD 3 and FLUX (Load CLIP, Dual CLIP Loader, Triple CLIP Loader).

Users keep SD 3's CLIP-L, CLIP-G and T5-XXL, and FLUX's CLIP-L and T5-XXL, as separate files in
`text_encoders/` (or `clip/`). Each file is told by its tensors:
- T5: `encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight` under any prefix
  (built by `t5_encoder.py`);
- a CLIP tower (`component_load._tower_file`): CLIP-G if it is OpenCLIP-named or 1280 wide,
  CLIP-L if 768 wide; a miniature tower of another width takes the CLIP role still free, CLIP-L
  first (the order Triple CLIP Loader lists them in).
CLIP towers are read as the SDXL loader reads them (penultimate layer, no final norm; bigG with
GELU, padded with 0); SD 3 keeps a CLIP-L file's text projection for its pooled vector,
FLUX uses CLIP-L unprojected. SD 3 takes any of the three; FLUX needs T5, and a CLIP-L beside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import torch

from latentloom.models.component_load import (
    BIG_G_WIDTH,
    CLIP_L_WIDTH,
    _load_tower,
    _tower_file,
    _TowerFile,
)
from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES
from latentloom.models.handles import ClipTextEncoder, T5TextEncoder, TextEncoders
from latentloom.models.layout import TEXT_TOWERS
from latentloom.models.safetensors_file import SafetensorsFile, refuse_pickle_path
from latentloom.models.t5_encoder import build_t5_encoder, t5_prefix, t5_text_encoder

FamilyClipType = Literal["sd3", "flux"]
FAMILY_CLIP_TYPES: tuple[FamilyClipType, ...] = ("sd3", "flux")
Role = Literal["clip_l", "clip_g", "t5"]
_ROLE_NAMES = {"clip_l": "CLIP-L", "clip_g": "CLIP-G", "t5": "T5-XXL"}


def _role(file: SafetensorsFile, path: Path) -> tuple[Role | None, _TowerFile | None]:
    """The file's role (None: a CLIP tower its width cannot place) and its CLIP tower."""
    if t5_prefix(file.keys()) is not None:
        return "t5", None
    try:
        tower = _tower_file(file, path)
    except UnrecognizedCheckpointError:
        raise UnrecognizedCheckpointError(
            path,
            "neither a CLIP text encoder (a token embedding) nor T5 (encoder.block.0...."
            f"relative_attention_bias.weight); found {', '.join(sorted(file.keys())[:6])}",
            "SD 3 takes CLIP-L, CLIP-G and T5-XXL files; FLUX takes CLIP-L and T5-XXL",
        ) from None
    if tower.layout == "open_clip" or tower.width == BIG_G_WIDTH:
        return "clip_g", tower
    if tower.width == CLIP_L_WIDTH:
        return "clip_l", tower
    return None, tower


def load_family_text_encoders(
    paths: Sequence[Path], kind: FamilyClipType, *, device: torch.device, dtype: torch.dtype
) -> TextEncoders:
    """One to three files as an SD 3 or FLUX CLIP handle (CLIP-L, CLIP-G, T5, in that order)."""
    if kind not in FAMILY_CLIP_TYPES:
        raise ValueError(f"type {kind!r} is not one of: {', '.join(FAMILY_CLIP_TYPES)}")
    for path in paths:
        refuse_pickle_path(path)
    family = FAMILIES[kind]
    loaded: dict[Role, ClipTextEncoder | T5TextEncoder] = {}
    with ExitStack() as stack:
        files = [stack.enter_context(SafetensorsFile(path)) for path in paths]
        found = [_role(file, path) for file, path in zip(files, paths, strict=True)]
        free: list[Role] = [r for r in ("clip_l", "clip_g") if r not in {f[0] for f in found}]
        for file, path, (known, tower) in zip(files, paths, found, strict=True):
            role: Role = known or (free.pop(0) if free else "clip_g")
            if role in loaded:
                raise UnrecognizedCheckpointError(
                    path,
                    f"a second {_ROLE_NAMES[role]} file; {family.display_name} takes one of "
                    "each text encoder",
                )
            if tower is None:
                model = build_t5_encoder(path, device=device, dtype=dtype)
                loaded[role] = t5_text_encoder(model, kind)
            else:
                loaded[role] = _clip_tower(file, tower, role, kind, device, dtype)
    _check(loaded, kind, paths)
    order: tuple[Role, ...] = ("clip_l", "clip_g", "t5")
    encoders = tuple(loaded[role] for role in order if role in loaded)
    return TextEncoders(family=family, encoders=encoders, source=", ".join(map(str, paths)))


def _clip_tower(
    file: SafetensorsFile,
    found: _TowerFile,
    role: Role,
    kind: FamilyClipType,
    device: torch.device,
    dtype: torch.dtype,
) -> ClipTextEncoder:
    l_tower, g_tower = TEXT_TOWERS["sdxl"]
    sdxl = FAMILIES["sdxl"]  # its key map reads OpenCLIP-named bigG files
    if role == "clip_g":
        return _load_tower(file, found, g_tower, sdxl, device, dtype)
    projection = found.prefix.removesuffix("text_model.") + "text_projection.weight"
    # SD 3 pools CLIP-L through its projection (diffusers' CLIPTextModelWithProjection).
    if kind == "sd3" and found.layout == "hf_clip" and projection in file:
        l_tower = dataclasses.replace(l_tower, with_projection=True)
    return _load_tower(file, found, l_tower, sdxl, device, dtype)


def _check(
    loaded: dict[Role, ClipTextEncoder | T5TextEncoder],
    kind: FamilyClipType,
    paths: Sequence[Path],
) -> None:
    if kind == "flux" and ("t5" not in loaded or "clip_g" in loaded):
        found = ", ".join(_ROLE_NAMES[role] for role in loaded)
        raise UnrecognizedCheckpointError(
            ", ".join(map(str, paths)),
            f"FLUX takes CLIP-L and T5-XXL; the files hold {found}",
            "Pick clip_l and t5xxl files with Dual CLIP Loader (type flux)",
        )


def file_role(path: Path) -> str | None:
    """What one text encoder file holds, for loaders' messages: "T5-XXL", "CLIP-L", "CLIP-G",
    "a CLIP text encoder N wide" (a width no role fits), or None for neither CLIP nor T5."""
    refuse_pickle_path(path)
    with SafetensorsFile(path) as file:
        try:
            role, tower = _role(file, path)
        except UnrecognizedCheckpointError:
            return None
    if role is not None:
        return _ROLE_NAMES[role]
    assert tower is not None  # _role gives a tower whenever it finds no role
    return f"a CLIP text encoder {tower.width} wide"
