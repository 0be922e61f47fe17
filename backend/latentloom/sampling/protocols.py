"""The shapes of the functions samplers take and are: denoiser, step callback, sampler."""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor

from latentloom.sampling.noise import NoiseSource


class Denoiser(Protocol):
    """The model seen by a sampler: the clean-image (x0) prediction at noise level sigma.

    `x` is in sigma space (x = x0 + sigma * noise), `sigma` a 0-dim tensor.
    """

    def __call__(self, x: Tensor, sigma: Tensor, /, **extra_args: Any) -> Tensor: ...


class StepCallback(Protocol):
    """Called once per sampler step; the only way progress leaves a sampler.

    To cancel, raise from the callback: the exception propagates out of the sampler.
    """

    def __call__(
        self, step_index: int, total_steps: int, x: Tensor, denoised: Tensor, /
    ) -> None: ...


class SamplerFn(Protocol):
    """`sample_<name>(denoise, x, sigmas, ...)`: integrate from sigmas[0] down to sigmas[-1]."""

    def __call__(
        self,
        denoise: Denoiser,
        x: Tensor,
        sigmas: Tensor,
        *,
        extra_args: dict[str, Any] | None = None,
        callback: StepCallback | None = None,
        noise: NoiseSource | None = None,
    ) -> Tensor: ...
