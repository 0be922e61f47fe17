"""A diffusers UNet seen as a k-diffusion denoiser, with classifier-free guidance.

Samplers work in sigma space (x = x0 + sigma * noise) and want the x0 prediction D(x, sigma).
An SD UNet was trained on the variance-preserving input x / sqrt(sigma^2 + 1) at the discrete
timestep matching sigma, and predicts either the noise (epsilon) or v = alpha*noise - s*x0 with
alpha = 1/sqrt(sigma^2+1), s = sigma/sqrt(sigma^2+1). Solving for x0:
    epsilon:       D = x - sigma * eps
    v_prediction:  D = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1)

Guidance batches [uncond, cond] into one UNet call, in that order, exactly as diffusers'
pipelines do: besides halving the calls, that is what makes our results bit-identical to theirs
(two separate calls differ by up to ~6e-5 in the final latent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor

from latentloom.models.handles import Conditioning, DiffusionModel
from latentloom.sampling.discrete import DiscreteSchedule

# How a sigma becomes the UNet's timestep: ComfyUI's nearest training step (the default, so
# the same seed gives ComfyUI's picture), or k-diffusion's and diffusers' interpolation.
TimestepMap = Literal["nearest", "interpolated"]


@dataclass(frozen=True)
class SdxlSizeConditioning:
    """SDXL's micro-conditioning on image size and crop, in pixels, as (height, width)."""

    original_size: tuple[int, int]
    target_size: tuple[int, int]
    crop_top_left: tuple[int, int] = (0, 0)

    def time_ids(self) -> Tensor:
        """[orig_h, orig_w, crop_top, crop_left, target_h, target_w] as a [1, 6] tensor."""
        values = (*self.original_size, *self.crop_top_left, *self.target_size)
        return torch.tensor([values], dtype=torch.float32)


def match_token_lengths(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Repeat two [1, tokens, dim] embeddings along tokens to their least common length.

    A long prompt is encoded as several 77-token chunks; cross-attention can take any length but
    the two halves of a guided batch must agree. Repeating a whole prompt keeps its attention
    distribution unchanged (ComfyUI does the same).
    """
    length_a, length_b = a.shape[1], b.shape[1]
    if length_a == length_b:
        return a, b
    common = math.lcm(length_a, length_b)
    return a.repeat(1, common // length_a, 1), b.repeat(1, common // length_b, 1)


class GuidedDenoiser:
    """D(x, sigma) for a DiffusionModel with classifier-free guidance scale `cfg`."""

    def __init__(
        self,
        model: DiffusionModel,
        positive: Conditioning,
        negative: Conditioning,
        cfg: float,
        *,
        added_cond: SdxlSizeConditioning | None = None,
        timesteps: TimestepMap = "nearest",
        concat: Tensor | None = None,
    ) -> None:
        _check_conditioning(model, positive, negative, added_cond)
        # Inpainting UNets take extra input channels (mask, masked-image latent) after x.
        self.concat = concat
        self.model = model
        self.schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
        self._to_timestep = (
            self.schedule.sigma_to_nearest_t if timesteps == "nearest" else self.schedule.sigma_to_t
        )
        self.cfg = cfg
        self.positive_embeds, self.negative_embeds = match_token_lengths(
            positive.first.embeds, negative.first.embeds
        )
        self.is_sdxl = model.family.name == "sdxl"
        self.positive_pooled = positive.first.pooled
        self.negative_pooled = negative.first.pooled
        self.added_cond = added_cond

    @property
    def guided(self) -> bool:
        """cfg = 1 makes the uncond prediction cancel out, so it is never computed."""
        return self.cfg != 1.0

    def __call__(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        unet = _unet(self.model)
        dtype = _dtype(unet)
        copies = 2 if self.guided else 1
        # Divide (not multiply by the reciprocal) as diffusers' scale_model_input does.
        x_in = torch.cat([x] * copies) / (sigma**2 + 1) ** 0.5
        if self.concat is not None:
            extra = self.concat.to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1)
            x_in = torch.cat([x_in, torch.cat([extra] * copies)], dim=1)
        timestep = self._to_timestep(sigma).to(torch.float32)
        output = unet(
            x_in.to(dtype),
            timestep,
            encoder_hidden_states=self._embeds(x).to(x.device, dtype),
            added_cond_kwargs=self._added_cond_kwargs(x),
            return_dict=False,
        )[0].to(x.dtype)
        if self.guided:
            uncond, cond = output.chunk(2)
            # Guidance on the raw prediction is linear, so equal to guidance on x0; doing it
            # here keeps the arithmetic in diffusers' order.
            output = uncond + self.cfg * (cond - uncond)
        return self._to_denoised(x, sigma, output)

    def _embeds(self, x: Tensor) -> Tensor:
        batch = x.shape[0]
        cond = self.positive_embeds.expand(batch, -1, -1)
        if not self.guided:
            return cond
        return torch.cat([self.negative_embeds.expand(batch, -1, -1), cond])

    def _added_cond_kwargs(self, x: Tensor) -> dict[str, Tensor] | None:
        if not self.is_sdxl:
            return None
        assert self.positive_pooled is not None and self.negative_pooled is not None
        batch = x.shape[0]
        pooled = self.positive_pooled.expand(batch, -1)
        if self.guided:
            pooled = torch.cat([self.negative_pooled.expand(batch, -1), pooled])
        size = self.added_cond or default_size_conditioning(x, self.model.family.downscale)
        time_ids = size.time_ids().expand(pooled.shape[0], -1)
        dtype = _dtype(_unet(self.model))
        return {"text_embeds": pooled.to(x.device, dtype), "time_ids": time_ids.to(x.device, dtype)}

    def _to_denoised(self, x: Tensor, sigma: Tensor, output: Tensor) -> Tensor:
        if self.model.prediction_type == "epsilon":
            return x - sigma * output
        return x / (sigma**2 + 1) - output * (sigma / (sigma**2 + 1) ** 0.5)


def _unet(model: DiffusionModel) -> torch.nn.Module:
    # diffusers' classes are untyped for mypy; the UNet is an nn.Module and that is all we need.
    return cast(torch.nn.Module, model.unet)


def _dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype the module computes in (its parameters'), e.g. float16 on CUDA."""
    return next(module.parameters()).dtype


def default_size_conditioning(x: Tensor, downscale: int) -> SdxlSizeConditioning:
    """Original and target size = the latent's size in pixels, no crop (diffusers' default)."""
    size = (x.shape[-2] * downscale, x.shape[-1] * downscale)
    return SdxlSizeConditioning(original_size=size, target_size=size)


def _check_conditioning(
    model: DiffusionModel,
    positive: Conditioning,
    negative: Conditioning,
    added_cond: SdxlSizeConditioning | None,
) -> None:
    if model.family.name != "sdxl":
        if added_cond is not None:
            raise ValueError(
                f"size conditioning is only used by SDXL models, but {model.source} is "
                f"{model.family.display_name}; pass added_cond=None"
            )
        return
    for role, conditioning in (("positive", positive), ("negative", negative)):
        if any(entry.pooled is None for entry in conditioning.entries):
            raise ValueError(
                f"SDXL model {model.source} needs a pooled text embedding, but the {role} "
                f"conditioning has none; encode the prompt with the SDXL text encoders"
            )
