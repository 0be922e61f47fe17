"""The kinds of tiny random checkpoint `make_tiny_checkpoint` writes, importable without torch
(the CLI offers them as choices before it loads anything heavy)."""

from __future__ import annotations

# The UNet families written by models/tiny.py itself.
UNET_FAMILIES = ("sd15", "sd2", "sdxl")
# Every kind: the refiner has SDXL latents and its own layout; FLUX.1 is its transformer file.
TINY_KINDS = (*UNET_FAMILIES, "sdxl-refiner", "sd3", "flux-dev", "flux-schnell")
