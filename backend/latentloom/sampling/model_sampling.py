"""How a model family maps the sampler's sigma to the network's input and output, and back.

Samplers integrate x from sigmas[0] down to sigmas[-1] and want the x0 prediction D(x, sigma).
What the network takes and returns depends on how it was trained:

* SD 1.x / 2.x / SDXL (`DiscreteSampling`): a variance-preserving process on 1000 training
  steps. Samplers live in sigma space (x = x0 + sigma * noise); the network sees
  x / sqrt(sigma^2 + 1) at the nearest training timestep and predicts epsilon or v. The
  start latent is latent + noise * sigma, or * sqrt(1 + sigma^2) when starting from pure noise
  (ComfyUI's and the LDM samplers' convention, see start.py).
* SD 3.x and FLUX.1 (`FlowSampling`): rectified flow, x = (1 - sigma) * x0 + sigma * noise with
  sigma in [0, 1]. The network sees x itself and predicts the velocity v = noise - x0, so
  x0 = x - sigma * v. Because dx/dsigma = noise - x0 = (x - x0) / sigma, the probability-flow
  ODE has exactly the k-diffusion form every deterministic sampler solves; only the start
  (sigma * noise + (1 - sigma) * latent) and ancestral re-noising differ (samplers_flow.py).
  Training timesteps t in (0, 1] are shifted towards noise: sigma(t) = shift * t /
  (1 + (shift - 1) * t). SD3 uses shift 3.0 and feeds the transformer sigma * 1000; FLUX uses
  shift = exp(mu) with mu depending on the image size (`flux_mu`) and feeds sigma itself (its
  transformer multiplies by 1000). The schedulers pick from a table of sigma(t) at
  t = 1/T, 2/T, ..., 1 (T = 1000 for SD3, 10000 for FLUX), as ComfyUI's do.

Both classes also serve as the noise schedule the schedulers read (`schedule`: a table of
sigmas, sigma_min/max and sigma <-> timestep maps), so every scheduler works on every family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import Tensor

from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.start import is_max_denoise

SamplingKind = Literal["epsilon", "v_prediction", "flow"]

SD3_SHIFT = 3.0
SD3_MULTIPLIER = 1000.0
FLOW_TIMESTEPS = 1000
FLUX_TIMESTEPS = 10000
FLUX_BASE_SHIFT = 0.5
FLUX_MAX_SHIFT = 1.15
# diffusers' calculate_shift / ComfyUI's ModelSamplingFlux: mu is linear in the image's token
# count (one token per 2x2 patch of the /8 latent, i.e. per 16x16 pixels) between these.
FLUX_BASE_TOKENS = 256
FLUX_MAX_TOKENS = 4096


class NoiseSchedule(Protocol):
    """What the schedulers read: the table of sigmas (ascending) and maps to and from t."""

    @property
    def sigmas(self) -> Tensor: ...

    @property
    def sigma_min(self) -> float: ...

    @property
    def sigma_max(self) -> float: ...

    def sigma_to_t(self, sigma: Tensor | float) -> Tensor: ...

    def t_to_sigma(self, t: Tensor | float) -> Tensor: ...

    def percent_to_sigma(self, percent: float) -> float: ...


class ModelSampling(Protocol):
    """How a family maps sigma to the network and back (see the module docstring)."""

    @property
    def kind(self) -> SamplingKind: ...

    @property
    def sigmas(self) -> Tensor:
        """Ascending float32 table the schedulers pick from."""
        ...

    @property
    def sigma_min(self) -> float: ...

    @property
    def sigma_max(self) -> float: ...

    @property
    def schedule(self) -> NoiseSchedule:
        """The table and maps the schedulers use (float64 for the discrete families)."""
        ...

    def timestep(self, sigma: Tensor) -> Tensor:
        """The network's timestep input for `sigma` (0-d float32)."""
        ...

    def percent_to_sigma(self, percent: float) -> float: ...

    def scale_input(self, x: Tensor, sigma: Tensor) -> Tensor: ...

    def denoised(self, x: Tensor, sigma: Tensor, output: Tensor) -> Tensor:
        """The x0 prediction from the network's raw `output` at input x."""
        ...

    def noise_scaling(
        self, sigma: Tensor, noise: Tensor, latent: Tensor, *, max_denoise: bool | None = None
    ) -> Tensor:
        """x at `sigma` from the clean `latent` and unit `noise`. `max_denoise` None: decide
        from sigma (the start of a run); False: plain re-noising (masked inpainting)."""
        ...

    def inverse_noise_scaling(self, sigma: Tensor, x: Tensor) -> Tensor:
        """The latent to hand on after sampling stopped at `sigma` (identity at sigma 0)."""
        ...


@dataclass(frozen=True, eq=False)
class DiscreteSampling:
    """SD's variance-preserving discrete schedule with epsilon or v prediction."""

    prediction: Literal["epsilon", "v_prediction"]
    alphas_cumprod: Tensor  # float64, one entry per training timestep
    schedule: DiscreteSchedule = field(init=False)

    def __post_init__(self) -> None:
        if self.prediction not in ("epsilon", "v_prediction"):
            raise ValueError(
                f"discrete model sampling predicts 'epsilon' or 'v_prediction', got "
                f"{self.prediction!r}"
            )
        object.__setattr__(
            self, "schedule", DiscreteSchedule.from_alphas_cumprod(self.alphas_cumprod)
        )

    @property
    def kind(self) -> SamplingKind:
        return self.prediction

    @property
    def sigmas(self) -> Tensor:
        return self.schedule.sigmas.to(torch.float32)

    @property
    def sigma_min(self) -> float:
        return self.schedule.sigma_min

    @property
    def sigma_max(self) -> float:
        return self.schedule.sigma_max

    def timestep(self, sigma: Tensor) -> Tensor:
        # ComfyUI's nearest training step (float32 log-sigma distances, see discrete.py).
        return self.schedule.sigma_to_nearest_t(sigma).to(torch.float32)

    def percent_to_sigma(self, percent: float) -> float:
        return self.schedule.percent_to_sigma(percent)

    def scale_input(self, x: Tensor, sigma: Tensor) -> Tensor:
        # Divide (not multiply by the reciprocal) as diffusers' scale_model_input does.
        return x / (sigma**2 + 1) ** 0.5

    def denoised(self, x: Tensor, sigma: Tensor, output: Tensor) -> Tensor:
        if self.prediction == "epsilon":
            return x - sigma * output
        return x / (sigma**2 + 1) - output * (sigma / (sigma**2 + 1) ** 0.5)

    def noise_scaling(
        self, sigma: Tensor, noise: Tensor, latent: Tensor, *, max_denoise: bool | None = None
    ) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        if max_denoise is None:
            max_denoise = is_max_denoise(float(sigma), self.sigma_max)
        scale = torch.sqrt(1.0 + sigma**2.0) if max_denoise else sigma
        # The latent first, as diffusers' add_noise: the sum then keeps the latent's memory
        # layout (VAE Encode's latents are channels-last), and the UNet runs the same kernels.
        return latent + noise * scale.to(noise.device)

    def inverse_noise_scaling(self, sigma: Tensor, x: Tensor) -> Tensor:
        return x


def shifted_sigma(shift: float, t: Tensor) -> Tensor:
    """Rectified-flow timestep shift: sigma(t) = shift * t / (1 + (shift - 1) * t)."""
    if shift == 1.0:
        return t
    return shift * t / (1 + (shift - 1) * t)


@dataclass(frozen=True, eq=False)
class FlowSampling:
    """Rectified flow with a timestep shift (SD3: shift 3, multiplier 1000; FLUX: exp(mu), 1)."""

    shift: float = SD3_SHIFT
    multiplier: float = SD3_MULTIPLIER
    timesteps: int = FLOW_TIMESTEPS
    sigmas: Tensor = field(init=False)

    def __post_init__(self) -> None:
        if not self.shift > 0 or not math.isfinite(self.shift):
            raise ValueError(f"a flow shift must be a positive number, got {self.shift}")
        if self.multiplier <= 0 or self.timesteps < 2:
            raise ValueError(
                f"flow sampling needs multiplier > 0 and at least 2 timesteps, got "
                f"{self.multiplier} and {self.timesteps}"
            )
        # float32 as ComfyUI builds its table, so "simple" picks the same sigmas.
        t = torch.arange(1, self.timesteps + 1, dtype=torch.float32) / self.timesteps
        object.__setattr__(self, "sigmas", shifted_sigma(self.shift, t))

    @property
    def kind(self) -> SamplingKind:
        return "flow"

    @property
    def schedule(self) -> FlowSampling:
        return self

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: Tensor) -> Tensor:
        return torch.as_tensor(sigma, dtype=torch.float32) * self.multiplier

    def sigma_to_t(self, sigma: Tensor | float) -> Tensor:
        """The network's timestep for sigma (ComfyUI's `timestep`), float64."""
        return torch.as_tensor(sigma).to("cpu", torch.float64) * self.multiplier

    def t_to_sigma(self, t: Tensor | float) -> Tensor:
        """sigma(t / multiplier) through the shift (ComfyUI's `sigma`), float64.

        Not the inverse of `sigma_to_t`: as in ComfyUI, the "normal" scheduler spaces the
        network's timesteps evenly and shifts them once more.
        """
        t = torch.as_tensor(t).to("cpu", torch.float64)
        return shifted_sigma(self.shift, t / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        # 0 % is "from the start, whatever the sigma" (+inf, as for SD) and 100 % is sigma 0.
        if percent <= 0.0:
            return math.inf
        if percent >= 1.0:
            return 0.0
        return float(shifted_sigma(self.shift, torch.tensor(1.0 - percent, dtype=torch.float64)))

    def scale_input(self, x: Tensor, sigma: Tensor) -> Tensor:
        return x

    def denoised(self, x: Tensor, sigma: Tensor, output: Tensor) -> Tensor:
        return x - sigma * output

    def noise_scaling(
        self, sigma: Tensor, noise: Tensor, latent: Tensor, *, max_denoise: bool | None = None
    ) -> Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32).to(noise.device)
        return sigma * noise + (1.0 - sigma) * latent

    def inverse_noise_scaling(self, sigma: Tensor, x: Tensor) -> Tensor:
        # Undo the (1 - sigma) the start applied to the latent, so a leftover-noise latent
        # re-enters noise_scaling with zero noise unchanged (ComfyUI's CONST). At sigma 0 (and
        # at 1, where nothing of the latent is left) x is handed on as it is.
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        if float(sigma) <= 0.0 or float(sigma) >= 1.0:
            return x
        return x / (1.0 - sigma.to(x.device))


# ComfyUI's stand-in for a zero terminal alpha_bar: keeps the last sigma finite (~4518).
ZSNR_TERMINAL_ALPHA_BAR = 4.8973451890853435e-08


def zero_terminal_snr(alphas_cumprod: Tensor) -> Tensor:
    """alphas_cumprod rescaled to (almost) zero terminal SNR, Lin et al. 2023 (Algorithm 1).

    sqrt(alpha_bar) is shifted so its last entry is 0 and scaled so its first is unchanged;
    the last alpha_bar is then set to ZSNR_TERMINAL_ALPHA_BAR rather than 0, as ComfyUI's
    ModelSamplingDiscrete(zsnr) does, so sigma_max stays finite.
    """
    root = alphas_cumprod.detach().to(torch.float64).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    rescaled = root**2
    rescaled[-1] = ZSNR_TERMINAL_ALPHA_BAR
    return rescaled


def flux_mu(
    width_px: int,
    height_px: int,
    base_shift: float = FLUX_BASE_SHIFT,
    max_shift: float = FLUX_MAX_SHIFT,
) -> float:
    """FLUX's resolution-dependent mu: linear in image tokens, 256 -> base, 4096 -> max."""
    slope = (max_shift - base_shift) / (FLUX_MAX_TOKENS - FLUX_BASE_TOKENS)
    intercept = base_shift - slope * FLUX_BASE_TOKENS
    tokens = (width_px / 16) * (height_px / 16)
    return tokens * slope + intercept


def flux_sampling(mu: float) -> FlowSampling:
    """FLUX's model sampling for `mu` (shift exp(mu), multiplier 1, 10000-entry table)."""
    return FlowSampling(shift=math.exp(mu), multiplier=1.0, timesteps=FLUX_TIMESTEPS)


def sd3_sampling(shift: float = SD3_SHIFT) -> FlowSampling:
    """SD 3.x's model sampling: shift (3.0 by default), timestep = sigma * 1000."""
    return FlowSampling(shift=shift, multiplier=SD3_MULTIPLIER, timesteps=FLOW_TIMESTEPS)
