"""The values of the custom-sampling set: NOISE, SAMPLER and GUIDER, as ComfyUI defines them.

Each is a small frozen record that says *what* to do; `run.py` does it. Keeping them inert
makes them cacheable node outputs and lets KSampler, KSampler Advanced and Sampler Custom
share one sampling path:

* NOISE (`RandomNoise`, `DisabledNoise`): the start noise for a latent, and the seed the
  per-step noise is drawn from. Random noise is exactly KSampler's (one CPU draw from the
  seed over the batch); disabled noise is zeros with seed 0, as ComfyUI's DisableNoise.
* SAMPLER (`SamplerChoice`): a sampler by name, and how it gets its per-step noise (fresh
  seeded generator, or a seeded Brownian tree for the SDE samplers).
* GUIDER (`Guider`): the model, the prompts and the guidance scale; it builds the guided
  denoiser for one run (which needs the latent for inpainting models' extra input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from latentloom.models.handles import Conditioning, DiffusionModel
from latentloom.sampling.denoiser import GuidedDenoiser, SdxlSizeConditioning, TimestepMap
from latentloom.sampling.noise import BrownianTreeNoise, NoiseSource, StepNoise
from latentloom.sampling.protocols import SamplerFn
from latentloom.sampling.samplers import BROWNIAN_NOISE_SAMPLERS, get_sampler
from latentloom.sampling.start import initial_noise

# ComfyUI's "ddim" is Euler with one difference under a noise mask: it re-noises the kept
# region with its own noise, drawn from seed + 1, not with the start noise.
OWN_INPAINT_NOISE_SAMPLERS: frozenset[str] = frozenset({"ddim"})


class Noise(Protocol):
    """NOISE: the start noise for a latent and the seed for the sampler's per-step noise."""

    @property
    def seed(self) -> int: ...

    def generate(self, latent: Tensor) -> Tensor:
        """Unit noise shaped like `latent`, float32 on the CPU."""
        ...


@dataclass(frozen=True)
class RandomNoise:
    """Standard normal noise from a CPU generator seeded with `seed`: KSampler's start noise."""

    seed: int

    def generate(self, latent: Tensor) -> Tensor:
        return initial_noise(self.seed, latent.shape)


@dataclass(frozen=True)
class DisabledNoise:
    """No start noise: the latent is sampled as it is (a second pass, a leftover-noise latent).

    The seed stays 0 as in ComfyUI, so ancestral samplers still get per-step noise from it.
    """

    seed: int = 0

    def generate(self, latent: Tensor) -> Tensor:
        return torch.zeros(latent.shape, dtype=torch.float32)


@dataclass(frozen=True)
class SamplerChoice:
    """SAMPLER: a sampler from SAMPLERS by name (unknown names raise UnknownNameError)."""

    name: str

    def __post_init__(self) -> None:
        get_sampler(self.name)  # fail when the value is made, naming the valid samplers

    @property
    def function(self) -> SamplerFn:
        return get_sampler(self.name)

    def function_for(self, kind: str) -> SamplerFn:
        """The sampler for a model of this sampling kind (a flow model's flow form)."""
        return get_sampler(self.name, kind)

    def step_noise(self, x: Tensor, sigmas: Tensor, seed: int) -> NoiseSource:
        """The per-step noise ComfyUI gives this sampler (see noise.py)."""
        if self.name in BROWNIAN_NOISE_SAMPLERS:
            return BrownianTreeNoise(x, sigmas, seed)
        return StepNoise(x, seed)

    def inpaint_noise(self, start_noise: Tensor, seed: int) -> Tensor:
        """The unit noise the masked-out region is re-noised with at each step."""
        if self.name in OWN_INPAINT_NOISE_SAMPLERS:
            return initial_noise((seed + 1) % 2**64, start_noise.shape).to(start_noise.device)
        return start_noise


@dataclass(frozen=True)
class Guider:
    """GUIDER: D(x, sigma) of `model` with classifier-free guidance of `positive` over `negative`.

    ComfyUI's BasicGuider is `negative=None` with cfg 1: one model call per step, the prompt
    alone (cfg 1 never evaluates the negative, so the two are the same computation).
    """

    model: DiffusionModel
    positive: Conditioning
    negative: Conditioning | None
    cfg: float

    @classmethod
    def basic(cls, model: DiffusionModel, conditioning: Conditioning) -> Guider:
        return cls(model, conditioning, None, 1.0)

    def denoiser(
        self,
        *,
        concat: Tensor | None = None,
        added_cond: SdxlSizeConditioning | None = None,
        timesteps: TimestepMap = "nearest",
    ) -> GuidedDenoiser:
        negative = self.negative if self.negative is not None else self.positive
        return GuidedDenoiser(
            self.model,
            self.positive,
            negative,
            self.cfg,
            added_cond=added_cond,
            timesteps=timesteps,
            concat=concat,
        )
