"""The discrete noise schedule a model was trained with, seen as a continuous sigma scale.

k-diffusion samplers work in "sigma space": x = x0 + sigma * noise. An SD-style UNet was
trained on 1000 discrete timesteps of a variance-preserving process with cumulative alphas
`alphas_cumprod[t]`; the equivalent sigma is `sqrt((1 - alpha) / alpha)`. Converting between a
sigma and a (fractional) timestep interpolates log-sigma linearly between neighbouring training
steps, exactly as k-diffusion's `DiscreteSchedule` and diffusers' `_sigma_to_t` do. ComfyUI
instead hands the UNet the training timestep nearest in log-sigma (`sigma_to_nearest_t`); a
sigma between training steps (Karras schedules, img2img, midpoints) then gives the UNet a
slightly different input, so which map the denoiser uses decides whose picture we match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, eq=False)
class DiscreteSchedule:
    """The training sigmas of a model (ascending with timestep) and sigma <-> timestep maps."""

    sigmas: Tensor  # float64, [timesteps], sigmas[t] for training timestep t
    log_sigmas: Tensor  # float64, log(sigmas)

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: Tensor) -> DiscreteSchedule:
        alphas = alphas_cumprod.detach().to("cpu", torch.float64)
        if alphas.ndim != 1 or alphas.numel() < 2:
            raise ValueError(
                f"alphas_cumprod must be a 1-D tensor of at least 2 entries, "
                f"got shape {tuple(alphas.shape)}"
            )
        sigmas = ((1.0 - alphas) / alphas).sqrt()
        return cls(sigmas=sigmas, log_sigmas=sigmas.log())

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma_to_t(self, sigma: Tensor | float) -> Tensor:
        """Fractional training timestep(s) for sigma(s), by log-sigma interpolation (float64)."""
        # On the CPU in float64 whatever the caller's device: the table is tiny and lives there.
        log_sigma = torch.as_tensor(sigma).to("cpu", torch.float64).clamp(min=1e-10).log()
        dists = log_sigma - self.log_sigmas.reshape(-1, *([1] * log_sigma.ndim))
        # Index of the last training sigma <= sigma (0 when sigma is below all of them).
        low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=self.log_sigmas.numel() - 2)
        high_idx = low_idx + 1
        low, high = self.log_sigmas[low_idx], self.log_sigmas[high_idx]
        w = ((low - log_sigma) / (low - high)).clamp(0, 1)
        return (1 - w) * low_idx + w * high_idx

    def sigma_to_nearest_t(self, sigma: Tensor | float) -> Tensor:
        """The training timestep(s) whose sigma is nearest in log space, as ComfyUI maps them.

        Like ComfyUI, the distance is taken between float32 log-sigmas (float64 here would break
        near-ties the other way).
        """
        log_sigma = torch.as_tensor(sigma).to("cpu", torch.float32).log()
        table = self.log_sigmas.to(torch.float32).reshape(-1, *([1] * log_sigma.ndim))
        return (log_sigma - table).abs().argmin(dim=0).to(torch.float64)

    def t_to_sigma(self, t: Tensor | float) -> Tensor:
        """Sigma(s) (float64) at fractional training timestep(s), interpolating log-sigma."""
        t = torch.as_tensor(t).to("cpu", torch.float64)
        low_idx = t.floor().long().clamp(0, self.log_sigmas.numel() - 1)
        high_idx = t.ceil().long().clamp(0, self.log_sigmas.numel() - 1)
        w = t - t.floor()
        log_sigma = (1 - w) * self.log_sigmas[low_idx] + w * self.log_sigmas[high_idx]
        return log_sigma.exp()

    def percent_to_sigma(self, percent: float) -> float:
        """The sigma at `percent` of the schedule (0 = its start, +inf; 1 = its end, 0)."""
        if percent <= 0.0:
            return math.inf
        if percent >= 1.0:
            return 0.0
        # float32 throughout, as ComfyUI computes it, so boundaries fall on the same step.
        log_sigmas = self.log_sigmas.to(torch.float32)
        last = log_sigmas.numel() - 1
        t = torch.tensor((1.0 - percent) * last, dtype=torch.float32).clamp(0, last)
        low, high = int(t.floor()), int(t.ceil())
        w = t - t.floor()
        return float(((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp())
