"""Sampler step time vs a bare diffusers UNet forward on the same shapes (target <= 1.00x).

One step of euler with guidance is one UNet call on a batch of 2 ([uncond, cond]) plus the
sampler's arithmetic; the baseline is that UNet call alone, timed the same way in the same run.

    .venv/bin/python -m bench.sampler_step [--size 512] [--steps 10] [--checkpoint FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch

from bench.common import tiny_models
from latentloom.models.handles import Conditioning
from latentloom.models.load import load_checkpoint
from latentloom.sampling.run import sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, help="default: a tiny SD 1.x checkpoint")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as scratch:
        path = (
            args.checkpoint or tiny_models(Path(scratch)) / "checkpoints" / "tiny-sd15.safetensors"
        )
        loaded = load_checkpoint(path, device=args.device, dtype=None)
    unet, device = loaded.model.unet, torch.device(args.device)
    dim = unet.config.cross_attention_dim
    cond = Conditioning.of(torch.randn(1, 77, dim, device=device))
    latent = torch.zeros(1, 4, args.size // 8, args.size // 8)
    x = torch.randn(2, 4, args.size // 8, args.size // 8, device=device, dtype=unet.dtype)
    context = torch.randn(2, 77, dim, device=device, dtype=unet.dtype)

    def ours() -> None:
        sample(
            loaded.model,
            cond,
            cond,
            latent,
            seed=0,
            steps=args.steps,
            cfg=7.0,
            sampler="euler",
            scheduler="karras",
            device=device,
        )

    @torch.inference_mode()
    def bare() -> None:
        for step in range(args.steps):
            unet(x, torch.tensor(999.0 - step * 50, device=device), encoder_hidden_states=context)

    ours(), bare()  # warm-up
    ours_times, bare_times = [], []
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
        ours_times.append(timed(ours, device) / args.steps)
        bare_times.append(timed(bare, device) / args.steps)
    ours_s, bare_s = min(ours_times), min(bare_times)
    print(
        f"sampler step, {path.name}, {args.size}x{args.size}, batch 2 (cfg), {args.device} "
        f"{unet.dtype}, best of {args.rounds} x {args.steps} steps"
    )
    print(f"  our euler step      {ours_s * 1000:8.2f} ms")
    print(f"  bare UNet forward   {bare_s * 1000:8.2f} ms (baseline)")
    print(f"  ratio: {ours_s / bare_s:.3f} (target <= 1.00)")


def timed(action, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    action()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
