"""Small pure functions on latent tensors: seeded noise, interpolation, noise mixing."""

from __future__ import annotations

import torch


def seeded_noise(seed: int, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise drawn on the CPU, so a seed means the same noise on every device."""
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation per batch item: keeps the norm of Gaussian-like latents."""
    flat_a, flat_b = a.flatten(1).double(), b.flatten(1).double()
    unit_a = flat_a / flat_a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    unit_b = flat_b / flat_b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    omega = torch.acos((unit_a * unit_b).sum(dim=1, keepdim=True).clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    # Nearly parallel vectors: slerp degenerates to lerp (and sin(omega) ~ 0 would blow up).
    parallel = sin_omega.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    weight_a = torch.where(parallel, 1 - t, torch.sin((1 - t) * omega) / safe)
    weight_b = torch.where(parallel, torch.full_like(omega, t), torch.sin(t * omega) / safe)
    return (weight_a * flat_a + weight_b * flat_b).reshape(a.shape).to(a.dtype)


def interpolate(a: torch.Tensor, b: torch.Tensor, t: float, mode: str) -> torch.Tensor:
    if mode == "lerp":
        return lerp(a, b, t)
    if mode == "slerp":
        return slerp(a, b, t)
    raise ValueError(f"unknown interpolation mode {mode!r}; expected 'lerp' or 'slerp'")


def add_noise(latent: torch.Tensor, noise: torch.Tensor, mode: str, amount: float) -> torch.Tensor:
    if mode == "sigma":
        return latent + noise * amount
    if mode == "strength":
        if not 0 <= amount <= 1:
            raise ValueError(f"strength must be within [0, 1], got {amount}")
        return latent * (1 - amount**2) ** 0.5 + noise * amount
    raise ValueError(f"unknown noise mode {mode!r}; expected 'strength' or 'sigma'")
