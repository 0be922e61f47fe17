"""A ControlNet sampler step vs a plain sampler step on the same UNet (expect ~1.3-1.5x).

A ControlNet is a second copy of the UNet's encoder half and middle block run on the same
batch, so a step costs the UNet plus roughly that half. Both sides are our `sample()` with
euler and guidance (one UNet call on [uncond, cond] per step; with the ControlNet, one
ControlNet call on the same batch too), timed interleaved in the same run.

The default UNet has SD 1.5's structure (four levels, two resnets each, attention on the
first three, 768-wide context, 8 heads) at a quarter of its widths, so the CPU run takes
seconds; `--full` uses SD 1.5's real widths (320, 640, 1280, 1280). Weights are random: time
does not depend on them.

    .venv/bin/python -m bench.controlnet_step [--size 256] [--steps 4] [--full] [--device cuda]
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace
from typing import Any

import torch

from latentloom.models.controlnet_source import ControlModel, ControlNetSource
from latentloom.models.family import SD15
from latentloom.models.handles import Conditioning, DiffusionModel
from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.run import sample


def sd15_shaped(widths: tuple[int, ...], device: torch.device) -> tuple[Any, Any]:
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    unet: Any = UNet2DConditionModel(
        block_out_channels=widths,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    controlnet: Any = ControlNetModel.from_unet(unet)
    return unet.eval().to(device), controlnet.eval().to(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="SD 1.5's real widths")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    device = torch.device(args.device)
    widths = (320, 640, 1280, 1280) if args.full else (96, 192, 320, 320)
    unet, controlnet = sd15_shaped(widths, device)
    model = DiffusionModel(unet, SD15, "epsilon", alphas_cumprod(), "bench-unet")
    cond = Conditioning.of(torch.randn(1, 77, 768, device=device))
    image = torch.rand(1, args.size, args.size, 3)
    source = ControlNetSource(ControlModel(controlnet, "controlnet", SD15, "bench"), image)
    steered = Conditioning((replace(cond.first, control=(source,)),))
    latent = torch.zeros(1, 4, args.size // 8, args.size // 8)

    def run(positive: Conditioning) -> None:
        sample(model, positive, positive, latent, seed=0, steps=args.steps, cfg=7.0,
               sampler="euler", scheduler="karras", device=device)  # fmt: skip

    run(cond)  # warm-up
    run(steered)
    plain_times, control_times = [], []
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
        plain_times.append(timed(lambda: run(cond), device) / args.steps)
        control_times.append(timed(lambda: run(steered), device) / args.steps)
    plain_s, control_s = min(plain_times), min(control_times)
    print(
        f"ControlNet step, SD 1.5 structure widths {widths}, {args.size}x{args.size}, batch 2 "
        f"(cfg), {args.device}, best of {args.rounds} x {args.steps} steps"
    )
    print(f"  plain euler step       {plain_s * 1000:8.2f} ms (baseline)")
    print(f"  with a ControlNet      {control_s * 1000:8.2f} ms")
    print(f"  ratio: {control_s / plain_s:.3f} (expect about 1.3-1.5)")


def timed(action: Any, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    action()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
