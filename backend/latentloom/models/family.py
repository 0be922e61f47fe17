"""Model families: the facts about SD 1.x, SD 2.x and SDXL that the rest of the engine needs.

A family is detected from a checkpoint's weights (see `detect.py`); everything downstream
(latent shape, VAE scaling, preview colours, text conditioning) reads it from here instead of
branching on names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FamilyName = Literal["sd15", "sd2", "sdxl", "sd3", "flux"]


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
    # VAE latents are stored as (z - shift) * scale; SD 3 and FLUX shift, the SD 1/2/XL VAEs do not.
    vae_shift_factor: float = 0.0


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

# SD 3.x: 16-channel latents with a shifted scale; the preview factors are the published
# SD3 latent -> RGB fit (one row per latent channel) with its bias.
SD3 = Family(
    name="sd3",
    display_name="SD 3.x",
    latent_channels=16,
    downscale=8,
    vae_scaling_factor=1.5305,
    preview_factors=(
        (-0.0922, -0.0175, 0.0749),
        (0.0311, 0.0633, 0.0954),
        (0.1994, 0.0927, 0.0458),
        (0.0856, 0.0339, 0.0902),
        (0.0587, 0.0272, -0.0496),
        (-0.0006, 0.1104, 0.0309),
        (0.0978, 0.0306, 0.0427),
        (-0.0042, 0.1038, 0.1358),
        (-0.0194, 0.0020, 0.0669),
        (-0.0488, 0.0130, -0.0268),
        (0.0922, 0.0988, 0.0951),
        (-0.0278, 0.0524, -0.0542),
        (0.0332, 0.0456, 0.0895),
        (-0.0069, -0.0030, -0.0810),
        (-0.0596, -0.0465, -0.0293),
        (-0.1448, -0.1463, -0.1189),
    ),
    preview_bias=(0.2394, 0.2135, 0.1925),
    vae_shift_factor=0.0609,
)

# FLUX.1: 16-channel latents of its own AE; preview factors are the published FLUX latent -> RGB
# fit (one row per latent channel) with its bias.
FLUX = Family(
    name="flux",
    display_name="FLUX.1",
    latent_channels=16,
    downscale=8,
    vae_scaling_factor=0.3611,
    preview_factors=(
        (-0.0346, 0.0244, 0.0681),
        (0.0034, 0.0210, 0.0687),
        (0.0275, -0.0668, -0.0433),
        (-0.0174, 0.0160, 0.0617),
        (0.0859, 0.0721, 0.0329),
        (0.0004, 0.0383, 0.0115),
        (0.0405, 0.0861, 0.0915),
        (-0.0236, -0.0185, -0.0259),
        (-0.0245, 0.0250, 0.1180),
        (0.1008, 0.0755, -0.0421),
        (-0.0515, 0.0201, 0.0011),
        (0.0428, -0.0012, -0.0036),
        (0.0817, 0.0765, 0.0749),
        (-0.1264, -0.0522, -0.1103),
        (-0.0280, -0.0881, -0.0499),
        (-0.1262, -0.0982, -0.0778),
    ),
    preview_bias=(-0.0329, -0.0718, -0.0851),
    vae_shift_factor=0.1159,
)

FAMILIES: dict[str, Family] = {family.name: family for family in (SD15, SD2, SDXL, SD3, FLUX)}
