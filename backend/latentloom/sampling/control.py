"""Control residuals for one UNet call: which sources apply at this sigma, scaled and summed.

A conditioning entry carries ControlNet / T2I-Adapter sources (`models/handles.ControlSource`).
Entries share a UNet call only when their sources are the same objects (`batching.py`), so the
sources of a call are those of its first region. Each source applies while
sigma_end <= sigma <= sigma_start, its start/end percent turned into sigmas by the model's
training schedule exactly as entry timestep ranges are (ComfyUI's percent_to_sigma); its
residuals are multiplied by its strength (a strength of 0 is skipped, so it is exactly no
ControlNet) and summed in the order the sources were stacked, as ComfyUI chains
`previous_controlnet` and diffusers sums a MultiControlNet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import Tensor

from latentloom.models.handles import ControlCall, ControlResiduals, ControlSource
from latentloom.sampling.model_sampling import NoiseSchedule
from latentloom.sampling.regions import percent_to_sigma

if TYPE_CHECKING:
    from latentloom.models.handles import DiffusionModel


@runtime_checkable
class BuiltOnModel(Protocol):
    """A control source that needs the model being sampled (Control-LoRA)."""

    def residuals_on(self, call: ControlCall, base: DiffusionModel) -> ControlResiduals: ...


class ControlApplier:
    """Turns a call's sources into the UNet's residual keyword arguments."""

    def __init__(self, schedule: NoiseSchedule, model: DiffusionModel | None = None) -> None:
        self.schedule = schedule
        self.model = model
        self._ranges: dict[int, tuple[float, float]] = {}

    def sigma_range(self, source: ControlSource) -> tuple[float, float]:
        """(sigma_start, sigma_end) of the source's start/end percent."""
        key = id(source)
        if key not in self._ranges:
            _check_source(source)
            self._ranges[key] = (
                percent_to_sigma(self.schedule, source.start_percent),
                percent_to_sigma(self.schedule, source.end_percent),
            )
        return self._ranges[key]

    def active(self, sources: Sequence[ControlSource], sigma: float) -> list[ControlSource]:
        """The sources that add something at `sigma`."""
        chosen = []
        for source in sources:
            start, end = self.sigma_range(source)
            if source.strength != 0.0 and end <= sigma <= start:
                chosen.append(source)
        return chosen

    def residuals(self, sources: Sequence[ControlSource], call: ControlCall) -> ControlResiduals:
        total: ControlResiduals | None = None
        for source in self.active(sources, float(call.sigma)):
            if self.model is not None and isinstance(source, BuiltOnModel):
                unscaled = source.residuals_on(call, self.model)
            else:
                unscaled = source.residuals(call)
            part = unscaled.scaled(source.strength)
            total = part if total is None else total + part
        return total or ControlResiduals()

    def unet_kwargs(self, sources: Sequence[ControlSource], call: ControlCall) -> dict[str, Any]:
        """`down_block_additional_residuals` & co. for diffusers' UNet, or {} when none applies."""
        if not sources:
            return {}
        return unet_kwargs(self.residuals(sources, call), call.x_in.dtype)


def unet_kwargs(residuals: ControlResiduals, dtype: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if residuals.down is not None:
        kwargs["down_block_additional_residuals"] = tuple(_to(t, dtype) for t in residuals.down)
    if residuals.mid is not None:
        kwargs["mid_block_additional_residual"] = _to(residuals.mid, dtype)
    if residuals.intrablock is not None:
        # diffusers pops from this list as it goes down: give it a fresh one every call.
        kwargs["down_intrablock_additional_residuals"] = [
            _to(t, dtype) for t in residuals.intrablock
        ]
    return kwargs


def _to(tensor: Tensor, dtype: Any) -> Tensor:
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


def _check_source(source: ControlSource) -> None:
    if not 0.0 <= source.start_percent <= 1.0 or not 0.0 <= source.end_percent <= 1.0:
        raise ValueError(
            f"a control source's start and end percent lie within 0..1, got start "
            f"{source.start_percent} and end {source.end_percent}"
        )
    if source.strength < 0:
        raise ValueError(f"a control source's strength must be >= 0, got {source.strength}")
