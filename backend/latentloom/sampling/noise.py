"""Where stochastic samplers get their fresh noise.

A sampler never calls `torch.randn` itself: it asks an injected `NoiseSource` for noise for the
step from `sigma` to `sigma_next`. Which source a KSampler uses follows ComfyUI (see run.py):

* `StepNoise` — ancestral samplers and LCM: a fresh generator seeded with the seed, on the
  sampling device, as ComfyUI's default noise sampler does. On the CPU the seed is shifted by
  one, so the per-step noise is not a copy of the initial noise (which is drawn from a CPU
  generator with the same seed); ComfyUI made the same shift (Comfy-Org/ComfyUI#11528, after
  users saw over-noised CPU images). CUDA and CPU generators give different streams, so for
  these samplers a seed's picture depends on the device, in ComfyUI and here alike.
* `BrownianTreeNoise` — dpmpp_sde and dpmpp_2m_sde: one seeded Brownian path, on the CPU.
* `GaussianNoise` — a continuing CPU generator, as a diffusers pipeline's `generator`; our
  oracle tests use it to hand our samplers diffusers' exact noise.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class NoiseSource(Protocol):
    """Unit-variance noise shaped like the latent, for the step sigma -> sigma_next."""

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor: ...


class GaussianNoise:
    """Independent standard normal noise per call, from a CPU `torch.Generator`.

    Pass the generator that drew the initial latent noise and the stream simply continues,
    which is what diffusers' pipelines do with their `generator` argument.
    """

    def __init__(self, like: Tensor, generator: torch.Generator) -> None:
        if generator.device.type != "cpu":
            raise ValueError(
                f"GaussianNoise needs a CPU generator so seeds transfer between devices, "
                f"got one on {generator.device}; use torch.Generator('cpu')"
            )
        self._shape = like.shape
        self._device = like.device
        self._dtype = like.dtype
        self._generator = generator

    @classmethod
    def from_seed(cls, like: Tensor, seed: int) -> GaussianNoise:
        return cls(like, torch.Generator("cpu").manual_seed(seed))

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        noise = torch.randn(self._shape, generator=self._generator, dtype=torch.float32)
        return noise.to(self._device, self._dtype)


class StepNoise:
    """ComfyUI's default noise sampler: a fresh generator on the sampling device, seeded once.

    Every call draws the next standard normal tensor shaped like the latent from that one
    generator. The generator lives where the latent does (CUDA noise on CUDA); on the CPU it is
    seeded with seed + 1 (modulo 2^64), on other devices with the seed itself.
    """

    def __init__(self, like: Tensor, seed: int) -> None:
        self._shape = like.shape
        self._device = like.device
        self._dtype = like.dtype
        self.seed = step_noise_seed(seed, like.device)
        self._generator = torch.Generator(like.device).manual_seed(self.seed)

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        return torch.randn(
            self._shape, generator=self._generator, device=self._device, dtype=self._dtype
        )


def step_noise_seed(seed: int, device: torch.device) -> int:
    """The seed StepNoise's generator gets on `device` (CPU: one more, wrapping at 2^64)."""
    return (seed + 1) % 2**64 if device.type == "cpu" else seed


class BrownianTreeNoise:
    """Noise as normalised increments of one seeded Brownian motion over sigma.

    Samplers that take sub-steps (DPM-Solver++ SDE evaluates a midpoint) need the noise of
    sigma -> mid and sigma -> next to be correlated as parts of one Brownian path; a Brownian
    tree gives that, and is what k-diffusion and diffusers use for these samplers. The tree is
    built exactly like theirs (torchsde.BrownianInterval, tol 1e-6, pool 24, halfway tree) so
    the same seed reproduces their noise.
    """

    def __init__(self, like: Tensor, sigmas: Tensor, seed: int) -> None:
        import torchsde  # imported lazily: only dpmpp_sde and dpmpp_2m_sde need it

        positive = sigmas[sigmas > 0]
        # torchsde wants plain scalars here; k-diffusion goes through tensors the same way.
        t0 = torch.as_tensor(positive.min().item())
        t1 = torch.as_tensor(sigmas.max().item())
        self._device = like.device
        self._dtype = like.dtype
        self._tree = torchsde.BrownianInterval(
            t0=t0,
            t1=t1,
            size=like.shape,
            dtype=torch.float32,
            device="cpu",
            entropy=seed,
            tol=1e-6,
            pool_size=24,
            halfway_tree=True,
        )
        # The interval as torchsde stores it: rounded to a few digits (from tol), so queries
        # at exactly sigma_min or sigma_max can fall just outside it.
        self._t_min = float(getattr(self._tree, "_start", t0))
        self._t_max = float(getattr(self._tree, "_end", t1))

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        sigma, sigma_next = torch.as_tensor(sigma).cpu(), torch.as_tensor(sigma_next).cpu()
        # The tree is queried forwards in time; a step down in sigma is the negated increment.
        if sigma < sigma_next:
            increment = self._tree(*self._inside(sigma, sigma_next))
        else:
            increment = -self._tree(*self._inside(sigma_next, sigma))
        noise = increment / (sigma_next - sigma).abs().sqrt()
        return noise.to(self._device, self._dtype)

    def _inside(self, low: Tensor, high: Tensor) -> tuple[float, float]:
        """Clamp query times into the tree's interval.

        torchsde clamps out-of-range queries exactly like this but warns on each one, which would
        flood the log (and fail a warnings-as-errors test run) without changing any value.
        """
        return (
            min(max(float(low), self._t_min), self._t_max),
            min(max(float(high), self._t_min), self._t_max),
        )
