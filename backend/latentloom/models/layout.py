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

# text_encoder_3: SD 3's T5-XXL (diffusers' name for it).
TextComponent = Literal["text_encoder", "text_encoder_2", "text_encoder_3"]
Component = Literal["unet", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"]

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

# SD 3.x single files (ComfyUI / Stability layout): an MMDiT under the UNet prefix, a
# 16-channel VAE under the VAE prefix, and up to three text encoders, each optional, stored in
# transformers' own names under these prefixes (`sd3_keys.py` maps them).
SD3_CLIP_L_PREFIX = "text_encoders.clip_l.transformer."
SD3_CLIP_G_PREFIX = "text_encoders.clip_g.transformer."
SD3_T5_PREFIX = "text_encoders.t5xxl.transformer."
SD3_TEXT_L = TextTower(
    component="text_encoder",
    prefix=SD3_CLIP_L_PREFIX,
    layout="hf_clip",
    with_projection=True,  # SD 3 pools both CLIP towers through their projections
    layer="penultimate",
    final_norm_on_penultimate=False,
    pad_token=END_OF_TEXT,
    pad_token_id=END_OF_TEXT_ID,
)
SD3_TEXT_G = TextTower(
    component="text_encoder_2",
    prefix=SD3_CLIP_G_PREFIX,
    layout="hf_clip",
    with_projection=True,
    layer="penultimate",
    final_norm_on_penultimate=False,
    pad_token=OPEN_CLIP_PAD,
    pad_token_id=OPEN_CLIP_PAD_ID,
)

# The SDXL refiner: only OpenCLIP bigG, first (and only) embedder of its file; diffusers keeps
# it as `text_encoder_2` (the refiner pipeline has no `text_encoder`), so the component name
# matches its folder. Read as the base reads bigG: penultimate layer, projected pooled output.
SDXL_REFINER_TEXT_G = TextTower(
    component="text_encoder_2",
    prefix="conditioner.embedders.0.model.",
    layout="open_clip",
    with_projection=True,
    layer="penultimate",
    final_norm_on_penultimate=False,
    pad_token=OPEN_CLIP_PAD,
    pad_token_id=OPEN_CLIP_PAD_ID,
)
REFINER_TEXT_TOWERS: tuple[TextTower, ...] = (SDXL_REFINER_TEXT_G,)
