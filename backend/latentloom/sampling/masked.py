"""Sampling under a latent noise mask: only the masked region changes, as ComfyUI inpaints.

A LATENT's `noise_mask` ([B or 1, H, W] in 0..1, any resolution; 1 = the sampler may change
it) is resized to the latent bilinearly and broadcast over channels and batch
(`prepare_mask`). `MaskedDenoiser` wraps any denoiser the way ComfyUI's KSamplerX0Inpaint
does, so every sampler honours the mask without knowing about it:

* before each model call, the unmasked region of x is replaced by the source latent
  re-noised to the current sigma with the start noise (the model's noise_scaling: SD's
  source + noise * sigma, a flow model's sigma * noise + (1 - sigma) * source), so the model
  sees a coherent picture at the noise level it expects;
* the x0 prediction's unmasked region is replaced by the source itself.

ComfyUI stops there; its final latent is the source again only to within rounding (the last
step is x + (x0 - x) in floating point). We add one blend of the result with the source
(`blend`), so the unmasked region equals the source bit for bit. Every blend is
`a * mask + b * (1 - mask)`, which for a mask of exact ones gives `a` exactly: an all-one
mask is bit-identical to sampling without a mask.

Inpainting checkpoints (a UNet taking 9 input channels: the latent's 4, then a 1-channel
mask and a 4-channel masked-image latent) get that extra input from `inpaint_concat`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.sampling.model_sampling import ModelSampling
from latentloom.sampling.protocols import Denoiser

# Inpainting UNets take [mask (1), masked image latent (4)] after the latent's own channels.
INPAINT_CONCAT_CHANNELS = 5
# ComfyUI's stand-in for "no picture known" when an inpainting model samples without a mask:
# SD's latent of a mid-grey image, per latent channel (scaled latent space).
BLANK_INPAINT_LATENT = (0.8223, -0.6876, 0.6364, 0.1380)


def prepare_mask(mask: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """The noise mask as a float32 [B, C, h, w] tensor matching a latent of `shape`.

    Resized bilinearly (ComfyUI's `reshape_mask`), repeated over the latent's channels, and
    over the batch (a longer mask batch is cut, a shorter one repeated, as ComfyUI does).
    """
    if mask.dim() not in (2, 3):
        raise ValueError(
            f"a noise mask is [H, W] or [B, H, W], got shape {tuple(mask.shape)}; "
            f"use Set Latent Noise Mask with a MASK"
        )
    batch, channels, height, width = shape
    resized = mask.detach().to(torch.float32).reshape(-1, 1, *mask.shape[-2:])
    if resized.shape[-2:] != (height, width):  # an equal size would interpolate to itself
        resized = F.interpolate(resized, size=(height, width), mode="bilinear")
    resized = resized.expand(-1, channels, -1, -1)
    if resized.shape[0] < batch:
        resized = resized.repeat(-(-batch // resized.shape[0]), 1, 1, 1)
    return resized[:batch].contiguous()


def blend(changed: Tensor, source: Tensor, mask: Tensor) -> Tensor:
    """`changed` where the mask is 1, `source` where it is 0, linear in between."""
    return changed * mask + source * (1.0 - mask)


class MaskedDenoiser:
    """A denoiser that keeps the unmasked region on the source's noisy path (KSamplerX0Inpaint).

    `noise` is the unit start noise (zeros when the sampler adds none), so the re-noised
    source lies on the same path the start latent began on.
    """

    def __init__(
        self,
        inner: Denoiser,
        source: Tensor,
        noise: Tensor,
        mask: Tensor,
        *,
        sampling: ModelSampling | None = None,
    ) -> None:
        self.inner = inner
        self.source = source
        self.noise = noise
        self.mask = mask
        self.sampling = sampling  # None: SD's sigma-space re-noising

    def __call__(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        if self.sampling is None:
            renoised = self.noise * sigma + self.source
        else:
            renoised = self.sampling.noise_scaling(
                sigma, self.noise, self.source, max_denoise=False
            )
        denoised = self.inner(blend(x, renoised, self.mask), sigma, **extra_args)
        return blend(denoised, self.source, self.mask)


def inpaint_concat(source: Tensor, mask: Tensor | None) -> Tensor:
    """The 5 extra input channels of an inpainting UNet: [mask, masked-image latent].

    With a noise mask: the mask's first channel rounded to 0/1 (ComfyUI rounds it) and the
    source latent, which VAE Encode (for Inpaint) already greyed out under the mask. Without
    one, everything is to be painted: a mask of ones and the mid-grey latent, as ComfyUI.
    """
    if mask is not None:
        return torch.cat([mask[:, :1].round(), source], dim=1)
    batch, _, height, width = source.shape
    grey = torch.tensor(BLANK_INPAINT_LATENT, dtype=source.dtype, device=source.device)
    blank = grey.view(1, -1, 1, 1).expand(batch, -1, height, width)
    ones = torch.ones(batch, 1, height, width, dtype=source.dtype, device=source.device)
    return torch.cat([ones, blank], dim=1)
