"""The SDXL refiner: what sets it apart from the SDXL base, in one place.

The refiner denoises SDXL latents, so its handles carry the family "sdxl" and it takes the
base's latents as they are. Two parts differ, and everything about them is read from shapes
(`configs.py`, detection variant "refiner" in `detect.py`):
- the UNet: 384 model channels (levels 384, 768, 1536, 1536), attention of depth 4 only on the
  two middle levels and in the middle block, a 1280-wide context (bigG alone), and `label_emb`
  reading the pooled bigG embedding (1280) plus Fourier features of five numbers instead of
  the base's six: original height and width, crop top and left, and an aesthetic score
  (5 x 256 + 1280 = 2560 inputs, where the base has 2816);
- the text: OpenCLIP bigG alone, stored as the first embedder (`layout.SDXL_REFINER_TEXT_G`),
  read like the base's bigG (penultimate hidden state, projected pooled output).

The aesthetic score defaults to 6.0 for the positive prompt and 2.5 for the negative one, as
in ComfyUI (SDXLRefiner) and diffusers (`aesthetic_score`, `negative_aesthetic_score`).
"""

from __future__ import annotations

from typing import Any

from latentloom.models.handles import DiffusionModel, TextEncoders
from latentloom.models.layout import REFINER_TEXT_TOWERS

POSITIVE_AESTHETIC_SCORE = 6.0
NEGATIVE_AESTHETIC_SCORE = 2.5
REFINER_TIME_IDS = 5  # original h, original w, crop top, crop left, aesthetic score
BASE_TIME_IDS = 6  # original h, original w, crop top, crop left, target h, target w


def time_id_count(unet: Any, pooled_width: int) -> int:
    """How many size numbers the UNet's `label_emb` reads beside the pooled text embedding:
    5 for a refiner, 6 for a base (0 for a UNet without text_time conditioning)."""
    config = getattr(unet, "config", None)
    adm_in = getattr(config, "projection_class_embeddings_input_dim", None)
    time_dim = getattr(config, "addition_time_embed_dim", None)
    if not adm_in or not time_dim:
        return 0
    return int((adm_in - pooled_width) // time_dim)


def is_refiner_model(model: DiffusionModel) -> bool:
    """An SDXL UNet whose extra conditioning reads the refiner's five numbers.

    A refiner attends to bigG alone, so its pooled width is its context width; the base's
    context is CLIP-L + bigG, which never leaves exactly five time embeddings."""
    config = getattr(model.unet, "config", None)
    context = int(getattr(config, "cross_attention_dim", 0) or 0)
    return model.family.name == "sdxl" and time_id_count(model.unet, context) == REFINER_TIME_IDS


def is_refiner_clip(clip: TextEncoders) -> bool:
    """CLIP from a refiner checkpoint: SDXL's family with bigG as its only encoder."""
    return (
        clip.family.name == "sdxl"
        and len(clip.encoders) == len(REFINER_TEXT_TOWERS)
        and hasattr(clip.encoders[0].model, "text_projection")
    )
