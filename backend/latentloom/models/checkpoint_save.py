"""Save MODEL, CLIP and VAE as one single-file checkpoint in the original layout (Checkpoint Save).

The writer is the one tiny checkpoints are made with (`export.write_original_checkpoint`): names
come from the inverse key map, tensors are streamed one at a time into a file that appears
atomically (`safe_write`). Weight patches (LoRAs) are baked in by writing while each module has
its patches applied (`patching.applied`), so the file holds exactly the weights the patched
handles compute with, and the shared modules are restored afterwards.

Tensors are written in the UNet's dtype (the engine's: fp32 on the CPU, fp16 on GPUs), so
reloading on the same machine gives the weights bit for bit. A v-prediction model gets
ComfyUI's `v_pred` marker and `modelspec.prediction_type` metadata, which detection reads.
An SDXL refiner is written in its own layout (bigG alone as the first embedder, its UNet's
five time ids read back from `label_emb`'s shape). What a file cannot carry is refused rather
than saved wrong: parts of different families, a refiner's UNet with the base's CLIP or the
other way round, and an SD 2.x text encoder from a diffusers folder (diffusers drops OpenCLIP's last layer, and a
single file is read one layer before its end).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from latentloom.models.build import text_root
from latentloom.models.errors import CheckpointError
from latentloom.models.export import write_original_checkpoint
from latentloom.models.handles import DiffusionModel, TextEncoders, Vae
from latentloom.models.keymap import KeyMap
from latentloom.models.layout import REFINER_TEXT_TOWERS, TEXT_TOWERS, Component
from latentloom.models.patching import applied
from latentloom.models.refiner import is_refiner_clip, is_refiner_model
from latentloom.models.tiny import V_PRED_MARKER

PREDICTION_METADATA = {"epsilon": "epsilon", "v_prediction": "v"}


# The families whose single-file layout the inverse key map writes (keymap.py); SD 3 and FLUX
# have their own key maps (sd3_keys.py, flux_keys.py), not wired into this writer yet.
SAVABLE_FAMILIES = ("sd15", "sd2", "sdxl")


def _refusal(path: Path, model: DiffusionModel, clip: TextEncoders) -> str | None:
    if model.family.name not in SAVABLE_FAMILIES:
        return (
            f"saving {model.family.display_name} models is not supported yet (SD 1.x, SD 2.x, "
            "SDXL and the SDXL refiner are); keep the original file, and apply LoRAs in the "
            "graph that loads it"
        )
    if clip.family != model.family:
        return (
            f"the model is {model.family.display_name} but the CLIP is {clip.family.display_name}"
            "; a checkpoint holds the parts of one family"
        )
    if is_refiner_model(model) != is_refiner_clip(clip):
        parts = ("model", "CLIP") if is_refiner_model(model) else ("CLIP", "model")
        return (
            f"the {parts[0]} is an SDXL refiner's but the {parts[1]} is the SDXL base's; a "
            "refiner checkpoint holds the refiner UNet with bigG alone (connect both from the "
            "refiner's Load Checkpoint)"
        )
    if clip.family.name == "sd2" and any(getattr(e, "layer", "") == "last" for e in clip.encoders):
        return (
            "the SD 2.x text encoder came from a diffusers folder, which drops OpenCLIP's last "
            "layer; in a single file it would be read one layer earlier"
        )
    return None


def save_checkpoint(
    path: Path,
    model: DiffusionModel,
    clip: TextEncoders,
    vae: Vae,
    *,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write the three parts, patches applied, to `path` (see the module docstring)."""
    problem = _refusal(path, model, clip)
    if problem:
        raise CheckpointError(path, f"cannot be saved: {problem}")
    unet = cast(nn.Module, model.unet)
    # A refiner keeps bigG alone, as the first embedder (refiner.py): its own tower table.
    refiner = is_refiner_model(model)
    towers = REFINER_TEXT_TOWERS if refiner else TEXT_TOWERS[model.family.name]
    modules: dict[Component, nn.Module] = {"unet": unet, "vae": cast(nn.Module, vae.module)}
    modules.update(
        {tower.component: e.model for tower, e in zip(towers, clip.encoders, strict=True)}
    )
    text_roots = {tower.component: text_root(modules[tower.component]) for tower in towers}
    configs: dict[str, Any] = {"unet": dict(model.unet.config), "vae": dict(vae.module.config)}  # type: ignore[attr-defined]
    keymap = KeyMap(model.family, configs["unet"], configs["vae"], text_roots, towers)
    dtype = next(unet.parameters()).dtype
    extra = {V_PRED_MARKER: torch.zeros(0)} if model.prediction_type == "v_prediction" else {}
    written = {
        "modelspec.prediction_type": PREDICTION_METADATA[model.prediction_type],
        **(metadata or {}),
    }
    with ExitStack() as stack:
        stack.enter_context(applied(unet, model.patches))
        for encoder in clip.encoders:
            stack.enter_context(applied(encoder.model, encoder.patches))
        with torch.no_grad():
            write_original_checkpoint(
                path, modules, keymap, dtype=dtype, extra=extra, metadata=written
            )
