"""How the guided denoiser calls a FLUX.1 transformer (the `NetworkCall` of a FLUX model).

FLUX works on tokens, not on a latent grid: each 2x2 patch of the 16-channel latent becomes one
64-wide token (`pack`, as diffusers' `_pack_latents`), and rotary position ids say where each
token sits: (0, row, column) for image tokens, zeros for text tokens (diffusers'
`_prepare_latent_image_ids`). The transformer's output tokens are unpacked to the grid again.

A region (Set Area) crop may have an odd side: it is padded to even by wrapping around
(circular), as ComfyUI pads to the patch size, and the output is cropped back.

Guidance: FLUX.1 dev was distilled to take its guidance scale as an input (its `guidance_in`
embedder). It comes from the conditioning entry (`extras["guidance"]`, one value per row, set
by Flux Guidance / CLIPTextEncodeFlux); an entry that sets none gets 3.5, the default of
ComfyUI's FluxGuidance and diffusers' FluxPipeline. Schnell has no embedder and ignores it.
The timestep is the sampler's sigma (`FlowSampling.timestep`); the transformer scales it and
the guidance by 1000 itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from diffusers import FluxTransformer2DModel

DEFAULT_FLUX_GUIDANCE = 3.5
PATCH = 2


def pack(latent: torch.Tensor) -> torch.Tensor:
    """[N, C, h, w] (h, w even) -> [N, h/2 * w/2, C * 4], rows first."""
    n, c, h, w = latent.shape
    patches = latent.view(n, c, h // PATCH, PATCH, w // PATCH, PATCH).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(n, (h // PATCH) * (w // PATCH), c * PATCH * PATCH)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of `pack`: [N, h/2 * w/2, C * 4] -> [N, C, h, w]."""
    n, _, packed = tokens.shape
    c = packed // (PATCH * PATCH)
    grid = tokens.view(n, height // PATCH, width // PATCH, c, PATCH, PATCH)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(n, c, height, width)


def image_ids(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Position ids of the packed tokens of an [h, w] latent: (0, row, column) per token."""
    rows, cols = height // PATCH, width // PATCH
    ids = torch.zeros(rows, cols, 3, device=device, dtype=dtype)
    ids[..., 1] = torch.arange(rows, device=device, dtype=dtype)[:, None]
    ids[..., 2] = torch.arange(cols, device=device, dtype=dtype)[None, :]
    return ids.reshape(rows * cols, 3)


class FluxCall:
    """Calls `transformer` on a latent batch the way FluxPipeline does (see the module docstring)."""

    def __init__(self, transformer: FluxTransformer2DModel) -> None:
        # Typed loosely: mypy does not see diffusers' models as callable nn.Modules.
        self.transformer: Any = transformer
        config: Any = cast(Any, transformer).config
        self.guidance_embeds = bool(config.guidance_embeds)

    def __call__(
        self,
        x_in: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        pooled: torch.Tensor | None,
        extras: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        n, _, height, width = x_in.shape
        if pooled is None:
            raise ValueError(
                "FLUX needs the pooled CLIP-L text embedding: encode the prompt with a CLIP "
                "loaded for FLUX (Dual CLIP Loader type flux, or a FLUX checkpoint)"
            )
        pad_h, pad_w = height % PATCH, width % PATCH
        if pad_h or pad_w:
            x_in = F.pad(x_in, (0, pad_w, 0, pad_h), mode="circular")
        padded_h, padded_w = height + pad_h, width + pad_w
        dtype, device = x_in.dtype, x_in.device
        guidance = None
        if self.guidance_embeds:
            given = extras.get("guidance")
            guidance = (
                torch.full((n,), DEFAULT_FLUX_GUIDANCE, device=device, dtype=torch.float32)
                if given is None
                else given.to(device=device, dtype=torch.float32).expand(n)
            )
        output = self.transformer(
            hidden_states=pack(x_in),
            encoder_hidden_states=context.to(dtype),
            pooled_projections=pooled.to(dtype),
            timestep=timestep.to(device=device, dtype=torch.float32).expand(n),
            img_ids=image_ids(padded_h, padded_w, device, dtype),
            txt_ids=torch.zeros(context.shape[1], 3, device=device, dtype=dtype),
            guidance=guidance,
            return_dict=False,
        )[0]
        return unpack(output, padded_h, padded_w)[:, :, :height, :width]
