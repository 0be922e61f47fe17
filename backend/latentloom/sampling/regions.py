"""Conditioning entries resolved against one latent: where each applies, how much, and when.

An entry's area may be given in latent pixels or as fractions; its mask at any resolution;
its timestep range as percents of the schedule. Before sampling a latent of a given size we
resolve every entry once into a `Region`: a clamped box on the latent grid (None = all of
it), a per-pixel weight over that box, and the sigma interval in which it applies. The rules
are ComfyUI's (`resolve_areas_and_cond_masks_multidim`, `get_area_and_mult`,
`calculate_start_end_timesteps`, `create_cond_with_same_area_if_none`), so a regional graph
gives the picture its users expect:

* fractions: size max(1, round(f * side)), offset round(f * side);
* masks are resized bilinearly to the latent; "mask bounds" replaces the area with the
  mask's bounding box, at least 8 latent pixels a side;
* weight = mask * mask_strength * strength; an area without a mask fades in linearly over
  min(8, side // 4) pixels along each edge that is not the latent's own edge, so regions
  blend without seams;
* percent p becomes the training sigma at timestep (1 - p) * 999, interpolated in float32
  log-sigma (a flow model: the shifted sigma at t = 1 - p); the entry applies while
  sigma_end <= sigma <= sigma_start;
* every area entry on one side gets a partner on the other side over the same area (the
  other side's smallest entry that contains it lends its prompt), so guidance inside a
  region compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from latentloom.models.handles import ConditioningEntry, FractionArea, LatentArea
from latentloom.sampling.model_sampling import NoiseSchedule

FEATHER_PIXELS = 8  # the longest linear fade-in along an area's inner edges
MIN_BOUNDS_SIDE = 8  # "mask bounds" areas are at least this many latent pixels a side


@dataclass(frozen=True)
class Box:
    """A rectangle on the latent grid, inside the latent."""

    y: int
    x: int
    height: int
    width: int

    def contains(self, other: Box) -> bool:
        return (
            other.y >= self.y
            and other.x >= self.x
            and other.y + other.height <= self.y + self.height
            and other.x + other.width <= self.x + self.width
        )


@dataclass(frozen=True, eq=False)
class Region:
    """One entry resolved against a latent: its box, per-pixel weight and sigma interval."""

    entry: ConditioningEntry  # the prompt: embeds, pooled, control
    box: Box | None  # None: the whole latent
    weight: Tensor  # [1 or B, 1, h, w] over the box (or the latent), float32
    sigma_start: float  # applies while sigma_end <= sigma <= sigma_start
    sigma_end: float

    def applies(self, sigma: float) -> bool:
        return self.sigma_end <= sigma <= self.sigma_start

    @property
    def is_plain(self) -> bool:
        """Everywhere with weight 1: its prediction needs no blending."""
        return self.box is None and self.entry.mask is None and self.entry.strength == 1.0


def percent_to_sigma(schedule: NoiseSchedule, percent: float) -> float:
    """The sigma at `percent` of the schedule (0 = its start, +inf; 1 = its end, 0).

    The schedule decides: a discrete model interpolates its training log-sigmas, a flow model
    shifts 1 - percent (see model_sampling.py).
    """
    return schedule.percent_to_sigma(percent)


def resolve(
    entries: tuple[ConditioningEntry, ...],
    latent_size: tuple[int, int],
    batch: int,
    schedule: NoiseSchedule,
    device: torch.device,
) -> list[Region]:
    """Resolve `entries` against a latent of `latent_size` (height, width) and `batch`."""
    regions = []
    for entry in entries:
        _check_entry(entry)
        mask = _latent_mask(entry.mask, latent_size, batch, device)
        box = _box(entry, mask, latent_size)
        regions.append(
            Region(
                entry=entry,
                box=box,
                weight=_weight(entry, box, mask, latent_size, device),
                sigma_start=percent_to_sigma(schedule, entry.start_percent),
                sigma_end=percent_to_sigma(schedule, entry.end_percent),
            )
        )
    return regions


def pair_areas(positive: list[Region], negative: list[Region]) -> tuple[list[Region], list[Region]]:
    """Give every area region a partner over the same area on the other side.

    ComfyUI's order: positive's areas are paired into negative first, then negative's
    (partners included, which find themselves and add nothing) into positive.
    """
    positive, negative = list(positive), list(negative)
    for region in positive:
        _add_partner(negative, region)
    for region in list(negative):
        _add_partner(positive, region)
    return positive, negative


def _add_partner(side: list[Region], region: Region) -> None:
    if region.box is None:
        return
    smallest: Region | None = None
    for other in side:
        if other.box is None:
            smallest = smallest or other
        elif other.box.contains(region.box) and (
            smallest is None or smallest.box is None or _pixels(smallest.box) > _pixels(other.box)
        ):
            smallest = other
    if smallest is None or smallest.box == region.box:
        return
    # The region's own area, weight and timing with the containing entry's prompt.
    lent = replace(region.entry, embeds=smallest.entry.embeds, pooled=smallest.entry.pooled)
    side.append(replace(region, entry=lent))


def _pixels(box: Box) -> int:
    return box.height * box.width


def _check_entry(entry: ConditioningEntry) -> None:
    if entry.strength < 0 or entry.mask_strength < 0:
        raise ValueError(
            f"conditioning strengths must be >= 0, got strength {entry.strength} and mask "
            f"strength {entry.mask_strength}"
        )
    if not 0.0 <= entry.start_percent <= 1.0 or not 0.0 <= entry.end_percent <= 1.0:
        raise ValueError(
            f"a conditioning timestep range lies within 0..1, got start {entry.start_percent} "
            f"and end {entry.end_percent}"
        )
    if entry.mask is not None and entry.mask.ndim not in (2, 3):
        raise ValueError(
            f"a conditioning mask is [H, W] or [B, H, W], got shape {tuple(entry.mask.shape)}"
        )


def _latent_mask(
    mask: Tensor | None, latent_size: tuple[int, int], batch: int, device: torch.device
) -> Tensor | None:
    """The mask as [1 or B, H, W] at the latent's resolution."""
    if mask is None:
        return None
    mask = mask.to(device, torch.float32)
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.shape[0] not in (1, batch):
        if mask.shape[0] < batch:
            raise ValueError(
                f"a conditioning mask batch of {mask.shape[0]} cannot cover a latent batch of "
                f"{batch}; use one mask or one per latent"
            )
        mask = mask[:batch]
    if tuple(mask.shape[1:]) != latent_size:
        mask = F.interpolate(mask.unsqueeze(1), size=latent_size, mode="bilinear").squeeze(1)
    return mask


def _box(entry: ConditioningEntry, mask: Tensor | None, latent_size: tuple[int, int]) -> Box | None:
    height, width = latent_size
    area: LatentArea | None
    if entry.set_area_to_bounds and mask is not None:
        area = _mask_bounds(mask)
    elif isinstance(entry.area, FractionArea):
        a = entry.area
        area = LatentArea(
            height=max(1, round(a.height * height)),
            width=max(1, round(a.width * width)),
            y=round(a.y * height),
            x=round(a.x * width),
        )
    else:
        area = entry.area
    if area is None:
        return None
    if not (0 <= area.y < height and 0 <= area.x < width) or area.height < 1 or area.width < 1:
        raise ValueError(
            f"a conditioning area of {area.width}x{area.height} at x={area.x}, y={area.y} "
            f"(latent pixels) lies outside the {width}x{height} latent; move it inside"
        )
    # Clamped to the latent, as ComfyUI does when it crops.
    return Box(area.y, area.x, min(area.height, height - area.y), min(area.width, width - area.x))


def _mask_bounds(mask: Tensor) -> LatentArea:
    nonzero = mask.abs().amax(dim=0) != 0
    if not bool(nonzero.any()):
        # An all-zero mask weighs nothing anywhere: the smallest area costs least.
        return LatentArea(MIN_BOUNDS_SIDE, MIN_BOUNDS_SIDE, 0, 0)
    ys, xs = torch.where(nonzero)
    y, x = int(ys.min()), int(xs.min())
    return LatentArea(
        height=max(MIN_BOUNDS_SIDE, int(ys.max()) - y + 1),
        width=max(MIN_BOUNDS_SIDE, int(xs.max()) - x + 1),
        y=y,
        x=x,
    )


def _weight(
    entry: ConditioningEntry,
    box: Box | None,
    mask: Tensor | None,
    latent_size: tuple[int, int],
    device: torch.device,
) -> Tensor:
    if box is None:
        box = Box(0, 0, *latent_size)
    if mask is not None:
        crop = mask[:, box.y : box.y + box.height, box.x : box.x + box.width]
        return (crop * entry.mask_strength * entry.strength).unsqueeze(1)
    weight = torch.full((1, 1, box.height, box.width), entry.strength, device=device)
    if entry.area is not None:
        _feather(weight, box, latent_size)
    return weight


def _feather(weight: Tensor, box: Box, latent_size: tuple[int, int]) -> None:
    """Fade the weight in linearly along the edges that lie inside the latent (in place)."""
    sides = ((2, box.y, box.height, latent_size[0]), (3, box.x, box.width, latent_size[1]))
    for dim, offset, size, full in sides:
        ramp = min(FEATHER_PIXELS, size // 4)
        factors = [(1.0 / ramp) * (t + 1) for t in range(ramp)]
        if offset != 0:
            for t, factor in enumerate(factors):
                weight.narrow(dim, t, 1).mul_(factor)
        if offset + size < full:
            for t, factor in enumerate(factors):
                weight.narrow(dim, size - 1 - t, 1).mul_(factor)
