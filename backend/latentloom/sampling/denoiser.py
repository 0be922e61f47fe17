"""A denoising network seen as a k-diffusion denoiser, with classifier-free guidance.

Samplers want the x0 prediction D(x, sigma). How sigma maps to the network's input, timestep
and output is the model's `ModelSampling` (model_sampling.py): an SD UNet sees
x / sqrt(sigma^2 + 1) at the nearest training step and predicts epsilon or v; an SD3 / FLUX
transformer sees x itself and predicts the flow velocity. Networks other than diffusers' UNet
are called through the model's `network_call` (context, pooled, and extras such as FLUX's
per-entry guidance).

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
with the same sources and the same FLUX guidance share a call (SDXL size conditioning is one
row of time ids per batch row, so entries of different sizes still share one).
SDXL's size conditioning is per entry (`ConditioningEntry.size`), else the run's `added_cond`,
else the latent's size; a refiner UNet (5 time ids) gets an aesthetic score instead of the
target size, 6.0 on the positive side and 2.5 on the negative unless the entry sets one.
"""

from __future__ import annotations

import math
from typing import Any, Literal, cast

import torch
from torch import Tensor

from latentloom.models.attention_patching import note_unet_call
from latentloom.models.handles import (
    Conditioning,
    ControlCall,
    DiffusionModel,
    SizeConditioning,
)
from latentloom.sampling.batching import Job, plan_calls
from latentloom.sampling.control import ControlApplier
from latentloom.sampling.model_sampling import DiscreteSampling
from latentloom.sampling.regions import Region, pair_areas, resolve
from latentloom.sampling.size_conditioning import (
    SdxlSizeConditioning,
    default_size_conditioning,
    time_ids,
)

__all__ = ["GuidedDenoiser", "SdxlSizeConditioning", "TimestepMap", "match_token_lengths"]

# How a sigma becomes the UNet's timestep: ComfyUI's nearest training step (the default, so
# the same seed gives ComfyUI's picture), or k-diffusion's and diffusers' interpolation.
TimestepMap = Literal["nearest", "interpolated"]


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
        self.sampling = model.model_sampling
        self.schedule = self.sampling.schedule
        interpolated = timesteps == "interpolated" and isinstance(self.sampling, DiscreteSampling)
        # A flow model's timestep is continuous already: "interpolated" changes nothing there.
        self._to_timestep = (
            self.sampling.schedule.sigma_to_t if interpolated else self.sampling.timestep
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
                guidance=region.entry.guidance,
                size=region.entry.size,
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
        windows = torch.cat([_window(x, region) for region in regions])
        x_in = self.sampling.scale_input(windows, sigma)
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
        embeds = embeds.to(x.device, dtype)
        # Attention patches (IP-Adapter) need the sigma and which rows are the negative side's.
        note_unet_call(sigma, [r in self._regions(x)[1] for r in regions for _ in range(batch)])
        if self.model.network_call is not None:
            return self._network_call(x, x_in, timestep, embeds, regions)
        added_cond = self._added_cond_kwargs(x, regions)
        # The call's regions carry the same sources (batching keys on them): ask the first's.
        control = self.control.unet_kwargs(
            regions[0].entry.control,
            ControlCall(x_in, timestep, sigma, embeds, added_cond, batch=batch),
        )
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

    def _network_call(
        self, x: Tensor, x_in: Tensor, timestep: Tensor, embeds: Tensor, regions: list[Region]
    ) -> Tensor:
        """A network other than a diffusers UNet (SD3, FLUX) through the model's network_call."""
        call = self.model.network_call
        assert call is not None  # the caller checked
        if regions[0].entry.control:
            raise ValueError(
                f"{self.model.source}: ControlNet / T2I-Adapter sources apply to SD UNets, not "
                f"to {self.model.family.display_name} models; remove Apply ControlNet from the "
                f"graph"
            )
        pooled = self._pooled(x, regions)
        extras: dict[str, Tensor] = {}
        guidance = regions[0].entry.guidance  # the call's regions share it (batching keys on it)
        if guidance is not None:
            rows = x_in.shape[0]
            extras["guidance"] = torch.full((rows,), guidance, dtype=torch.float32, device=x.device)
        pooled = None if pooled is None else pooled.to(x.device, x_in.dtype)
        return call(x_in, timestep, embeds, pooled, extras).to(x.dtype)

    def _pooled(self, x: Tensor, regions: list[Region]) -> Tensor | None:
        """The call's pooled embeddings [N, P], or None when no entry has one."""
        pooled_list = [region.entry.pooled for region in regions]
        if all(p is None for p in pooled_list):
            return None
        if any(p is None for p in pooled_list):
            raise ValueError(
                f"{self.model.source}: some conditioning entries have a pooled text embedding "
                f"and some do not; encode every prompt with this model's text encoders"
            )
        return torch.cat([p.expand(x.shape[0], -1) for p in pooled_list if p is not None])

    def _added_cond_kwargs(self, x: Tensor, regions: list[Region]) -> dict[str, Tensor] | None:
        if not self.is_sdxl:
            return None
        pooled = self._pooled(x, regions)
        assert pooled is not None  # _check_conditioning refused SDXL entries without one
        negatives = self._regions(x)[1]
        # One row of time ids per region (a refiner's aesthetic score differs by side).
        rows = [
            self._time_ids(x, r.entry.size, is_negative=r in negatives).expand(x.shape[0], -1)
            for r in regions
        ]
        time_ids = torch.cat(rows)
        dtype = _dtype(_unet(self.model))
        return {"text_embeds": pooled.to(x.device, dtype), "time_ids": time_ids.to(x.device, dtype)}

    @property
    def _refiner(self) -> bool:
        """Whether the UNet takes the refiner's 5 time ids (aesthetic score) instead of 6."""
        # From the shapes (pooled width + 5 time embeddings), so tiny refiners count too.
        from latentloom.models.refiner import is_refiner_model

        return is_refiner_model(self.model)

    def _time_ids(self, x: Tensor, size: SizeConditioning | None, *, is_negative: bool) -> Tensor:
        default = self.added_cond or default_size_conditioning(x, self.model.family.downscale)
        return time_ids(size, default, refiner=self._refiner, is_negative=is_negative)

    def _to_denoised(self, x: Tensor, sigma: Tensor, output: Tensor) -> Tensor:
        return self.sampling.denoised(x, sigma, output)


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
