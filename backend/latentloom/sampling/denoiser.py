"""A diffusers UNet seen as a k-diffusion denoiser, with classifier-free guidance.

Samplers work in sigma space (x = x0 + sigma * noise) and want the x0 prediction D(x, sigma).
An SD UNet was trained on the variance-preserving input x / sqrt(sigma^2 + 1) at the discrete
timestep matching sigma, and predicts either the noise (epsilon) or v = alpha*noise - s*x0 with
alpha = 1/sqrt(sigma^2+1), s = sigma/sqrt(sigma^2+1). Solving for x0:
    epsilon:       D = x - sigma * eps
    v_prediction:  D = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1)

Each side (positive, negative) is a list of entries with optional area, mask, strength and
timestep range (resolved into regions by `regions.py`). At each sigma the UNet runs for every
applying region on its crop of the latent; a side's prediction is the per-pixel average of its
regions' predictions weighted by their weights, as ComfyUI's calc_cond_batch computes it.
Regions of the same size share a UNet call (`batching.py`), the negative side first: a plain
step is then one call on [uncond, cond], exactly as diffusers' pipelines do it. Besides halving
the calls, that is what makes our results bit-identical to theirs (two separate calls differ by
up to ~6e-5 in the final latent); a side with a single everywhere-entry skips the averaging, and
guidance is applied to the raw prediction, in diffusers' order. Entries with ControlNet or
T2I-Adapter sources get their residuals added to the UNet call (`control.py`); only entries
with the same sources share a call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor

from latentloom.models.attention_patching import note_unet_call
from latentloom.models.handles import Conditioning, ControlCall, DiffusionModel
from latentloom.sampling.batching import Job, plan_calls
from latentloom.sampling.control import ControlApplier
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.regions import Region, pair_areas, resolve

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
    common = math.lcm(a.shape[1], b.shape[1])
    return _repeat_tokens(a, common), _repeat_tokens(b, common)


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
        self.model = model
        self.schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
        self._to_timestep = (
            self.schedule.sigma_to_nearest_t if timesteps == "nearest" else self.schedule.sigma_to_t
        )
        self.cfg = cfg
        self.positive, self.negative = positive, negative
        self.is_sdxl = model.family.name == "sdxl"
        self.added_cond = added_cond
        # Inpainting UNets take extra input channels (mask, masked-image latent) after x.
        self.concat = concat
        self._resolved: dict[tuple[int, ...], tuple[list[Region], list[Region]]] = {}
        self.control = ControlApplier(self.schedule, model)

    @property
    def guided(self) -> bool:
        """cfg = 1 makes the uncond prediction cancel out, so it is never computed."""
        return self.cfg != 1.0

    def __call__(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        positive, negative = self._regions(x)
        level = float(sigma)
        cond_regions = [region for region in positive if region.applies(level)]
        uncond_regions = [r for r in negative if r.applies(level)] if self.guided else []
        # Negative first: a plain step is then diffusers' single call [uncond, cond].
        predictions = self._predict(x, sigma, uncond_regions + cond_regions)
        split = len(uncond_regions)
        cond, cond_gap = _blend(x, list(zip(cond_regions, predictions[split:], strict=True)))
        if not self.guided:
            return _zero_where(cond_gap, self._to_denoised(x, sigma, cond))
        uncond, uncond_gap = _blend(x, list(zip(uncond_regions, predictions[:split], strict=True)))
        if cond_gap is None and uncond_gap is None:
            # Guidance on the raw prediction is linear, so equal to guidance on x0; doing it
            # here keeps the arithmetic in diffusers' order.
            return self._to_denoised(x, sigma, uncond + self.cfg * (cond - uncond))
        # Where no entry of a side applies, that side predicts x0 = 0, as in ComfyUI.
        cond = _zero_where(cond_gap, self._to_denoised(x, sigma, cond))
        uncond = _zero_where(uncond_gap, self._to_denoised(x, sigma, uncond))
        return uncond + self.cfg * (cond - uncond)

    def _regions(self, x: Tensor) -> tuple[list[Region], list[Region]]:
        """Every entry resolved against this latent's size and batch (once per shape)."""
        key = (x.shape[0], *x.shape[2:])
        if key not in self._resolved:
            size, batch = (x.shape[-2], x.shape[-1]), x.shape[0]
            positive, negative = (
                resolve(c.entries, size, batch, self.schedule, x.device)
                for c in (self.positive, self.negative)
            )
            self._resolved[key] = pair_areas(positive, negative)
        return self._resolved[key]

    def _predict(self, x: Tensor, sigma: Tensor, regions: list[Region]) -> list[Tensor]:
        """The UNet's raw prediction for each region over its box, batching where possible."""
        jobs = [
            Job(
                *_box_size(region, x),
                tokens=region.entry.embeds.shape[1],
                control=tuple(map(id, region.entry.control)),
            )
            for region in regions
        ]
        calls = plan_calls(jobs, pixel_budget=2 * x.shape[-2] * x.shape[-1])
        predictions: list[Tensor | None] = [None] * len(regions)
        for call in calls:
            outputs = self._unet_call(x, sigma, [regions[i] for i in call])
            for index, output in zip(call, outputs.split(x.shape[0]), strict=True):
                predictions[index] = output
        return [p for p in predictions if p is not None]

    def _unet_call(self, x: Tensor, sigma: Tensor, regions: list[Region]) -> Tensor:
        unet = _unet(self.model)
        dtype = _dtype(unet)
        batch = x.shape[0]
        # Divide (not multiply by the reciprocal) as diffusers' scale_model_input does.
        x_in = torch.cat([_window(x, region) for region in regions]) / (sigma**2 + 1) ** 0.5
        if self.concat is not None:
            extra = self.concat.to(x.device, x.dtype).expand(batch, -1, -1, -1)
            x_in = torch.cat([x_in, torch.cat([_window(extra, r) for r in regions])], dim=1)
        common = math.lcm(*(region.entry.embeds.shape[1] for region in regions))
        embeds = torch.cat(
            [
                _repeat_tokens(region.entry.embeds, common).expand(batch, -1, -1)
                for region in regions
            ]
        )
        x_in, timestep = x_in.to(dtype), self._to_timestep(sigma).to(torch.float32)
        embeds, added_cond = embeds.to(x.device, dtype), self._added_cond_kwargs(x, regions)
        # The call's regions carry the same sources (batching keys on them): ask the first's.
        control = self.control.unet_kwargs(
            regions[0].entry.control,
            ControlCall(x_in, timestep, sigma, embeds, added_cond, batch=batch),
        )
        # Attention patches (IP-Adapter) need the sigma and which rows are the negative side's.
        note_unet_call(sigma, [r in self._regions(x)[1] for r in regions for _ in range(batch)])
        return cast(
            Tensor,
            unet(
                x_in,
                timestep,
                encoder_hidden_states=embeds,
                added_cond_kwargs=added_cond,
                return_dict=False,
                **control,
            )[0].to(x.dtype),
        )

    def _added_cond_kwargs(self, x: Tensor, regions: list[Region]) -> dict[str, Tensor] | None:
        if not self.is_sdxl:
            return None
        pooled_list = [region.entry.pooled for region in regions]
        pooled = torch.cat([p.expand(x.shape[0], -1) for p in pooled_list if p is not None])
        # Every entry sees the whole picture's size, areas included (ComfyUI does the same).
        size = self.added_cond or default_size_conditioning(x, self.model.family.downscale)
        time_ids = size.time_ids().expand(pooled.shape[0], -1)
        dtype = _dtype(_unet(self.model))
        return {"text_embeds": pooled.to(x.device, dtype), "time_ids": time_ids.to(x.device, dtype)}

    def _to_denoised(self, x: Tensor, sigma: Tensor, output: Tensor) -> Tensor:
        if self.model.prediction_type == "epsilon":
            return x - sigma * output
        return x / (sigma**2 + 1) - output * (sigma / (sigma**2 + 1) ** 0.5)


# ComfyUI's floor under the summed weights: a pixel no entry covers divides 0 by it and gets 0.
WEIGHT_FLOOR = 1e-37


def _blend(x: Tensor, predictions: list[tuple[Region, Tensor]]) -> tuple[Tensor, Tensor | None]:
    """The weighted average of one side's predictions, and where no region covered ([B,1,H,W])."""
    if len(predictions) == 1 and predictions[0][0].is_plain:
        return predictions[0][1], None
    total = torch.zeros_like(x)
    weights = torch.full((x.shape[0], 1, *x.shape[2:]), WEIGHT_FLOOR, device=x.device)
    for region, prediction in predictions:
        weight = region.weight.to(x.dtype)
        _window(total, region).add_(prediction * weight)
        _window(weights, region).add_(weight)
    gap = weights <= WEIGHT_FLOOR
    return total / weights, gap if bool(gap.any()) else None


def _zero_where(gap: Tensor | None, x0: Tensor) -> Tensor:
    return x0 if gap is None else x0.masked_fill(gap, 0.0)


def _window(tensor: Tensor, region: Region) -> Tensor:
    """A view of `tensor` ([B, C, H, W]) over the region's box."""
    box = region.box
    if box is None:
        return tensor
    return tensor[:, :, box.y : box.y + box.height, box.x : box.x + box.width]


def _box_size(region: Region, x: Tensor) -> tuple[int, int]:
    if region.box is None:
        return x.shape[-2], x.shape[-1]
    return region.box.height, region.box.width


def _repeat_tokens(embeds: Tensor, length: int) -> Tensor:
    """[1, tokens, dim] repeated along tokens to `length` (a multiple of tokens)."""
    return embeds if embeds.shape[1] == length else embeds.repeat(1, length // embeds.shape[1], 1)


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
