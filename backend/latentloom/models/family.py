"""Model families: the facts about SD 1.x, SD 2.x and SDXL that the rest of the engine needs.

A family is detected from a checkpoint's weights (see `detect.py`); everything downstream
(latent shape, VAE scaling, preview colours, text conditioning) reads it from here instead of
branching on names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FamilyName = Literal["sd15", "sd2", "sdxl"]


@dataclass(frozen=True)
class Family:
    name: FamilyName
    display_name: str
    latent_channels: int
    downscale: int
    vae_scaling_factor: float
    # Linear latent -> RGB approximation for live previews: rows are latent channels.
    preview_factors: tuple[tuple[float, float, float], ...]
    preview_bias: tuple[float, float, float]


SD15 = Family(
    name="sd15",
    display_name="SD 1.x",
    latent_channels=4,
    downscale=8,
    vae_scaling_factor=0.18215,
    preview_factors=(
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
    preview_bias=(0.0, 0.0, 0.0),
)

SD2 = Family(
    name="sd2",
    display_name="SD 2.x",
    latent_channels=4,
    downscale=8,
    vae_scaling_factor=0.18215,
    preview_factors=SD15.preview_factors,
    preview_bias=(0.0, 0.0, 0.0),
)

SDXL = Family(
    name="sdxl",
    display_name="SDXL",
    latent_channels=4,
    downscale=8,
    vae_scaling_factor=0.13025,
    preview_factors=(
        (0.3651, 0.4232, 0.4341),
        (-0.2533, -0.0042, 0.1068),
        (0.1076, 0.1111, -0.0362),
        (-0.3165, -0.2492, -0.2188),
    ),
    preview_bias=(0.1084, -0.0175, -0.0011),
)

FAMILIES: dict[str, Family] = {family.name: family for family in (SD15, SD2, SDXL)}
