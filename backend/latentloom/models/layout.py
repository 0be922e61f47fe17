"""Where each component lives in an original (LDM / SGM) single-file checkpoint, per family.

These are the facts detection, config derivation, key mapping and the tiny writer share: the
key prefix of the UNet, the VAE and each text tower, which layout a text tower uses (Hugging
Face CLIP names or OpenCLIP names) and how the text encoder is read at sampling time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from latentloom.models.family import FamilyName

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."

TextComponent = Literal["text_encoder", "text_encoder_2"]
Component = Literal["unet", "vae", "text_encoder", "text_encoder_2"]

START_OF_TEXT_ID = 49406
END_OF_TEXT = "<|endoftext|>"  # CLIP-L pads with the end token
END_OF_TEXT_ID = 49407
OPEN_CLIP_PAD = "!"  # OpenCLIP pads with zeros, which is the token "!"
OPEN_CLIP_PAD_ID = 0


@dataclass(frozen=True)
class TextTower:
    """One text encoder of a family: where its keys are and how its output is used."""

    component: TextComponent
    prefix: str
    layout: Literal["hf_clip", "open_clip"]
    # SDXL's bigG also feeds its projected pooled output to the UNet.
    with_projection: bool
    layer: Literal["last", "penultimate"]
    final_norm_on_penultimate: bool
    pad_token: str
    pad_token_id: int


SD15_TEXT = TextTower(
    component="text_encoder",
    prefix="cond_stage_model.transformer.",
    layout="hf_clip",
    with_projection=False,
    layer="last",
    final_norm_on_penultimate=False,
    pad_token=END_OF_TEXT,
    pad_token_id=END_OF_TEXT_ID,
)
SD2_TEXT = TextTower(
    component="text_encoder",
    prefix="cond_stage_model.model.",
    layout="open_clip",
    with_projection=False,
    layer="penultimate",
    final_norm_on_penultimate=True,
    pad_token=OPEN_CLIP_PAD,
    pad_token_id=OPEN_CLIP_PAD_ID,
)
SDXL_TEXT_L = TextTower(
    component="text_encoder",
    prefix="conditioner.embedders.0.transformer.",
    layout="hf_clip",
    with_projection=False,
    layer="penultimate",
    final_norm_on_penultimate=False,
    pad_token=END_OF_TEXT,
    pad_token_id=END_OF_TEXT_ID,
)
SDXL_TEXT_G = TextTower(
    component="text_encoder_2",
    prefix="conditioner.embedders.1.model.",
    layout="open_clip",
    with_projection=True,
    layer="penultimate",
    final_norm_on_penultimate=False,
    pad_token=OPEN_CLIP_PAD,
    pad_token_id=OPEN_CLIP_PAD_ID,
)

TEXT_TOWERS: dict[FamilyName, tuple[TextTower, ...]] = {
    "sd15": (SD15_TEXT,),
    "sd2": (SD2_TEXT,),
    "sdxl": (SDXL_TEXT_L, SDXL_TEXT_G),
}
