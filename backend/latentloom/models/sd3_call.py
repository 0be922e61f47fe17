"""How the guided denoiser calls an SD 3.x MMDiT (the `NetworkCall` of SD 3 models).

The denoiser hands over what it hands a UNet: the scaled latent, the network's timestep (for SD
3, sigma x 1000, fractional), the text context (CLIP-L/G hidden states beside T5's tokens) and
the pooled CLIP vector. diffusers' `SD3Transformer2DModel` wants one timestep per batch row and
the pooled vector under another name; it patchifies and unpatchifies itself, so the output is
the velocity on the latent grid. Called exactly as `StableDiffusion3Pipeline` calls it, so the
oracle test compares like with like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Sd3Call:
    """Calls `transformer` (the DiffusionModel's `unet` field: the same module, patched in place
    by LoRA and device code) with the denoiser's inputs."""

    transformer: Any  # diffusers' SD3Transformer2DModel (untyped for mypy)

    def __call__(
        self,
        x_in: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        pooled: torch.Tensor | None,
        extras: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        batch = x_in.shape[0]
        if pooled is None:  # a conditioning without CLIP: zeros, as a missing encoder gives
            width = int(self.transformer.config.pooled_projection_dim)
            pooled = x_in.new_zeros(batch, width)
        output = self.transformer(
            hidden_states=x_in,
            timestep=timestep.reshape(-1).expand(batch),
            encoder_hidden_states=context.to(x_in.dtype),
            pooled_projections=pooled.to(x_in.dtype),
            return_dict=False,
        )[0]
        return output  # type: ignore[no-any-return]
