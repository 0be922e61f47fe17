"""Tell a single-file checkpoint's family and prediction type from its keys, metadata and weights.

Family: each family's text encoder sits under its own prefix (see `layout.py`), so the text
tower names the family; the UNet and VAE must be there too. Shapes are checked later, when the
configs derived from them must agree with each other (`configs.py`).

Prediction type, in order:
1. a `v_pred` key (the marker ComfyUI writes when it saves a v-prediction model) -> v;
2. safetensors metadata `modelspec.prediction_type` ("v"/"v_prediction" or "epsilon"/"eps");
3. SD 2.x only, from the weights: an SD 2.x 768-v file as Stability published it has the same
   keys and shapes as the 512 epsilon model (the original loaders read the type from a separate
   YAML), but training left a tell-tale. ComfyUI's published heuristic reads the LayerNorm bias
   of the first transformer in the UNet's last output block
   (`output_blocks.11.1.transformer_blocks.0.norm1.bias` in the full-size layout) and calls the
   model v-prediction when its spread (population standard deviation) exceeds 0.09; the 512
   epsilon models sit well below. We read the same tensor, found as the last output block that
   has a transformer, so miniature test models with fewer blocks carry the same tell-tale.
   Inpainting UNets (not 4 input channels) are epsilon, as in ComfyUI.
4. otherwise epsilon.

Variant: a UNet whose first conv takes 2 x latent channels + 1 (9 for SD and SDXL) is an
inpainting model: after the latent it reads a 1-channel mask and the masked image's latent
(ComfyUI's "mask" and "masked_image" concat keys; sampling/run.py builds them). Any other
count but the latent's own is refused when the configs are derived (`configs.py`).

Variant "refiner": an SDXL refiner file (`label_emb` and only OpenCLIP bigG, as the first
embedder `conditioner.embedders.0.model.*`); its latents are SDXL's, its UNet and text
encoder differ (see `models/refiner.py`).

Only step 3 reads tensor data (one small vector); `Detection.prediction_rule` says in words which
rule decided and, for the weights, the number it saw, so the Load Checkpoint node can show it.
The caller can still override (`load_checkpoint`'s `prediction_type=`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES, Family, FamilyName
from latentloom.models.handles import PredictionType
from latentloom.models.layout import (
    REFINER_TEXT_TOWERS,
    TEXT_TOWERS,
    UNET_PREFIX,
    VAE_PREFIX,
)

V_PRED_KEY = "v_pred"
MODELSPEC_PREDICTION = "modelspec.prediction_type"
_V_NAMES = frozenset({"v", "v_prediction", "v-prediction", "vpred", "v_pred"})
_EPSILON_NAMES = frozenset({"epsilon", "eps"})
_SDXL_ADM_KEY = UNET_PREFIX + "label_emb.0.0.weight"
_CONV_IN_KEY = UNET_PREFIX + "input_blocks.0.0.weight"
# ComfyUI's SD 2.x heuristic: this bias's population standard deviation above 0.09 means v.
V_SPREAD_THRESHOLD = 0.09
_TELL_TALE = re.compile(
    re.escape(UNET_PREFIX) + r"output_blocks\.(\d+)\.1\.transformer_blocks\.0\.norm1\.bias"
)

_MAX_TELL_TALE_WIDTH = 1 << 16  # a LayerNorm bias: the block's width (320 in SD 2.x)

Variant = Literal["standard", "inpainting", "refiner"]


class WeightReader(Protocol):
    """What the weight rule needs of an open file (`SafetensorsFile` is one)."""

    def shape(self, key: str) -> tuple[int, ...]: ...

    def read(self, key: str) -> torch.Tensor: ...


EXPECTED_LAYOUTS = (
    "SD 1.x (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*); "
    "SD 2.x (model.diffusion_model.*, first_stage_model.*, cond_stage_model.model.*); "
    "SDXL base (model.diffusion_model.* with label_emb, first_stage_model.*, "
    "conditioner.embedders.0.transformer.* and conditioner.embedders.1.model.*); "
    "SDXL refiner (model.diffusion_model.* with label_emb, first_stage_model.*, "
    "conditioner.embedders.0.model.* only)"
)


@dataclass(frozen=True)
class Detection:
    family: Family
    prediction_type: PredictionType
    prediction_rule: str  # which rule decided the prediction type, for messages and logs
    variant: Variant = "standard"


def _key_groups(keys: Collection[str]) -> str:
    """A short census of the file's key prefixes, to show what was found instead."""
    counts: Counter[str] = Counter()
    for key in keys:
        parts = key.split(".")
        depth = 3 if parts[0] == "conditioner" else 2
        counts[".".join(parts[:depth]) + ("." if len(parts) > depth else "")] += 1
    groups = [f"{prefix}* ({count})" for prefix, count in counts.most_common(8)]
    extra = len(counts) - len(groups)
    return ", ".join(groups) + (f" and {extra} more groups" if extra > 0 else "") or "no tensors"


def _has_prefix(keys: Collection[str], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in keys)


def detect_family(keys: Collection[str], path: str | Path) -> Family:
    """The family whose text tower prefixes are all present, with a UNet and a VAE beside."""
    has_unet = UNET_PREFIX + "input_blocks.0.0.weight" in keys
    has_vae = _has_prefix(keys, VAE_PREFIX + "decoder.")
    names: tuple[FamilyName, ...] = ("sdxl", "sd2", "sd15")
    for name in names:
        if all(_has_prefix(keys, tower.prefix) for tower in TEXT_TOWERS[name]):
            if name == "sdxl" and _SDXL_ADM_KEY not in keys:
                continue
            if has_unet and has_vae:
                return FAMILIES[name]
            missing = [part for part, ok in (("UNet", has_unet), ("VAE", has_vae)) if not ok]
            raise UnrecognizedCheckpointError(
                path,
                f"looks like {FAMILIES[name].display_name} but has no {' or '.join(missing)}",
                "A single-file checkpoint must hold the UNet, the VAE and the text encoder(s)",
            )
    if is_refiner_layout(keys) and has_unet and has_vae:
        return FAMILIES["sdxl"]  # the refiner denoises SDXL latents
    raise UnrecognizedCheckpointError(
        path,
        f"unrecognised checkpoint layout; expected one of: {EXPECTED_LAYOUTS}; "
        f"found: {_key_groups(keys)}",
    )


def is_refiner_layout(keys: Collection[str]) -> bool:
    """SDXL refiner: the text_time UNet (`label_emb`) with bigG alone as the first embedder."""
    return (
        _SDXL_ADM_KEY in keys
        and all(_has_prefix(keys, tower.prefix) for tower in REFINER_TEXT_TOWERS)
        and not _has_prefix(keys, "conditioner.embedders.1.")
    )


def tell_tale_key(keys: Collection[str]) -> str | None:
    """The norm bias the SD 2.x heuristic reads: the last output block with a transformer."""
    found = [(int(match[1]), key) for key in keys if (match := _TELL_TALE.fullmatch(key))]
    return max(found)[1] if found else None


def inpainting_in_channels(family: Family) -> int:
    """An inpainting UNet's input: the latent, a 1-channel mask, the masked image's latent."""
    return 2 * family.latent_channels + 1


def detect_variant(family: Family, conv_in_shape: tuple[int, ...] | None) -> Variant:
    """ "inpainting" when the UNet's first conv (`input_blocks.0.0.weight`, [out, in, k, k])
    takes an inpainting model's channels, else "standard"."""
    in_channels = conv_in_shape[1] if conv_in_shape is not None and len(conv_in_shape) > 1 else 0
    return "inpainting" if in_channels == inpainting_in_channels(family) else "standard"


def prediction_from_weights(
    keys: Collection[str], weights: WeightReader
) -> tuple[PredictionType, str]:
    """SD 2.x: v-prediction when the tell-tale bias is spread wide (see the module docstring)."""
    unmarked = f"(the file has no {V_PRED_KEY} key or {MODELSPEC_PREDICTION} metadata)"
    in_channels = weights.shape(_CONV_IN_KEY)[1] if _CONV_IN_KEY in keys else 4
    if in_channels != 4:
        return "epsilon", (
            f"the UNet takes {in_channels} input channels: an inpainting model, which SD 2.x "
            f"trained as epsilon {unmarked}"
        )
    key = tell_tale_key(keys)
    shape = weights.shape(key) if key is not None else ()
    if key is None or len(shape) != 1 or not 0 < shape[0] <= _MAX_TELL_TALE_WIDTH:
        return "epsilon", f"no output-block transformer norm bias to read: epsilon {unmarked}"
    spread = float(weights.read(key).float().std(unbiased=False))
    name = key.removeprefix(UNET_PREFIX)
    if spread > V_SPREAD_THRESHOLD:
        return "v_prediction", (
            f"weights: the spread of {name} is {spread:.3f} > {V_SPREAD_THRESHOLD}, as in "
            f"SD 2.x 768-v models {unmarked}"
        )
    return "epsilon", (
        f"weights: the spread of {name} is {spread:.3f} <= {V_SPREAD_THRESHOLD}, as in "
        f"SD 2.x 512 epsilon models {unmarked}"
    )


def detect_prediction_type(
    keys: Collection[str], metadata: Mapping[str, str], path: str | Path
) -> tuple[PredictionType, str] | None:
    """The prediction type a marker or the metadata declares and the rule that decided it;
    None when the file declares nothing."""
    if V_PRED_KEY in keys:
        return "v_prediction", f"the file has a '{V_PRED_KEY}' key"
    declared = metadata.get(MODELSPEC_PREDICTION)
    if declared is not None:
        normalized = declared.strip().lower()
        if normalized in _V_NAMES:
            return "v_prediction", f"metadata {MODELSPEC_PREDICTION} = {declared!r}"
        if normalized in _EPSILON_NAMES:
            return "epsilon", f"metadata {MODELSPEC_PREDICTION} = {declared!r}"
        raise UnrecognizedCheckpointError(
            path,
            f"metadata {MODELSPEC_PREDICTION} is {declared!r}; supported: 'epsilon', 'v'",
        )
    return None


NO_MARKER = "no v-prediction marker (v_pred key or modelspec metadata): epsilon"


def detect(
    keys: Collection[str],
    metadata: Mapping[str, str],
    path: str | Path,
    *,
    weights: WeightReader | None = None,
) -> Detection:
    """Family and prediction type; `weights` (the open file) enables the SD 2.x weight rule."""
    family = detect_family(keys, path)
    declared = detect_prediction_type(keys, metadata, path)
    if declared is not None:
        prediction_type, rule = declared
    elif family.name == "sd2" and weights is not None:
        prediction_type, rule = prediction_from_weights(keys, weights)
    else:
        prediction_type, rule = "epsilon", NO_MARKER
    conv_in = weights.shape(_CONV_IN_KEY) if weights is not None else None
    refiner = family.name == "sdxl" and is_refiner_layout(keys)
    return Detection(
        family=family,
        prediction_type=prediction_type,
        prediction_rule=rule,
        variant="refiner" if refiner else detect_variant(family, conv_in),
    )
