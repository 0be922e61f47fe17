"""Tell a single-file checkpoint's family and prediction type from its keys and metadata.

Family: each family's text encoder sits under its own prefix (see `layout.py`), so the text
tower names the family; the UNet and VAE must be there too. Shapes are checked later, when the
configs derived from them must agree with each other (`configs.py`).

Prediction type, in order:
1. a `v_pred` key (the marker ComfyUI writes when it saves a v-prediction model) -> v;
2. safetensors metadata `modelspec.prediction_type` ("v"/"v_prediction" or "epsilon"/"eps");
3. otherwise epsilon.
The weights themselves do not say: an SD 2.x 768-v file as Stability published it has the same
keys and shapes as the 512 epsilon model (the original loaders read it from a separate YAML).
Such a file is detected as epsilon; the caller must say otherwise (`load_checkpoint`'s
`prediction_type=`) and the result records which rule decided.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from latentloom.models.errors import UnrecognizedCheckpointError
from latentloom.models.family import FAMILIES, Family, FamilyName
from latentloom.models.handles import PredictionType
from latentloom.models.layout import TEXT_TOWERS, UNET_PREFIX, VAE_PREFIX

V_PRED_KEY = "v_pred"
MODELSPEC_PREDICTION = "modelspec.prediction_type"
_V_NAMES = frozenset({"v", "v_prediction", "v-prediction", "vpred", "v_pred"})
_EPSILON_NAMES = frozenset({"epsilon", "eps"})
_SDXL_ADM_KEY = UNET_PREFIX + "label_emb.0.0.weight"

EXPECTED_LAYOUTS = (
    "SD 1.x (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*); "
    "SD 2.x (model.diffusion_model.*, first_stage_model.*, cond_stage_model.model.*); "
    "SDXL base (model.diffusion_model.* with label_emb, first_stage_model.*, "
    "conditioner.embedders.0.transformer.* and conditioner.embedders.1.model.*)"
)


@dataclass(frozen=True)
class Detection:
    family: Family
    prediction_type: PredictionType
    prediction_rule: str  # which rule decided the prediction type, for messages and logs


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
    raise UnrecognizedCheckpointError(
        path,
        f"unrecognised checkpoint layout; expected one of: {EXPECTED_LAYOUTS}; "
        f"found: {_key_groups(keys)}",
    )


def detect_prediction_type(
    keys: Collection[str], metadata: Mapping[str, str], path: str | Path
) -> tuple[PredictionType, str]:
    """The prediction type and the rule that decided it (see the module docstring)."""
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
    return "epsilon", "no v-prediction marker (v_pred key or modelspec metadata): epsilon"


def detect(keys: Collection[str], metadata: Mapping[str, str], path: str | Path) -> Detection:
    family = detect_family(keys, path)
    prediction_type, rule = detect_prediction_type(keys, metadata, path)
    return Detection(family=family, prediction_type=prediction_type, prediction_rule=rule)
