"""A sampler step with a base prompt and 3 area prompts vs a plain single-prompt step.

Regional conditioning runs the UNet on each area's crop besides the whole latent, so a step
costs more: the question is how much, and how many UNet calls it takes. Three cases, each the
same euler/karras run with guidance, timed per step in the same process:

* plain: one prompt (the baseline): one call on [uncond, cond];
* 3 equal areas (thirds side by side): the base pair, then the three area pairs in one call;
* 3 areas of 3 sizes (a half, a quarter, an eighth): the base pair and one call per size.

A call never holds more latent pixels than the plain step's (the memory the budget assumes),
so thirds that round up past the width (256: 3 x 11 > 32 columns) take one more call; 384
(48 = 3 x 16) is the default for that reason.

    .venv/bin/python -m bench.regional_conditioning [--size 384] [--steps 4] [--checkpoint FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.common import tiny_models
from latentloom.models.handles import Conditioning, ConditioningEntry, FractionArea
from latentloom.models.load import load_checkpoint
from latentloom.sampling.run import sample

EQUAL_THIRDS = (
    FractionArea(height=1.0, width=1 / 3, y=0.0, x=0.0),
    FractionArea(height=1.0, width=1 / 3, y=0.0, x=1 / 3),
    FractionArea(height=1.0, width=1 / 3, y=0.0, x=2 / 3),
)
THREE_SIZES = (
    FractionArea(height=1.0, width=0.5, y=0.0, x=0.0),
    FractionArea(height=0.5, width=0.5, y=0.0, x=0.5),
    FractionArea(height=0.25, width=0.5, y=0.75, x=0.5),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, help="default: a tiny SD 1.x checkpoint")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as scratch:
        path = (
            args.checkpoint or tiny_models(Path(scratch)) / "checkpoints" / "tiny-sd15.safetensors"
        )
        model = load_checkpoint(path, device=args.device, dtype=None).model
    unet: Any = model.unet
    calls: list[tuple[int, ...]] = []
    unet.register_forward_pre_hook(lambda module, inputs: calls.append(tuple(inputs[0].shape)))
    dim = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(0)

    def entry() -> ConditioningEntry:
        return ConditioningEntry(torch.randn(1, 77, dim, generator=generator).to(args.device))

    base, negative = entry(), Conditioning((entry(),))
    cases = {
        "plain": Conditioning((base,)),
        "3 equal areas": Conditioning((base, *(replace(entry(), area=a) for a in EQUAL_THIRDS))),
        "3 areas, 3 sizes": Conditioning((base, *(replace(entry(), area=a) for a in THREE_SIZES))),
    }
    latent = torch.zeros(1, 4, args.size // 8, args.size // 8)

    def run(positive: Conditioning) -> None:
        sample(
            model,
            positive,
            negative,
            latent,
            seed=0,
            steps=args.steps,
            cfg=7.0,
            sampler="euler",
            scheduler="karras",
            device=args.device,
        )

    for positive in cases.values():
        run(positive)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in cases}
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits every case alike
        for name, positive in cases.items():
            calls.clear()
            times[name].append(timed(lambda p=positive: run(p), args.device) / args.steps)
            shapes[name] = calls[: len(calls) // args.steps]
    print(
        f"regional conditioning, {path.name}, {args.size}x{args.size}, cfg 7 (guided), "
        f"{args.device} {unet.dtype}, best of {args.rounds} x {args.steps} euler steps"
    )
    plain = min(times["plain"])
    for name in cases:
        best = min(times[name])
        batches = ", ".join(f"{s[0]}x{s[2]}x{s[3]}" for s in shapes[name])
        print(
            f"  {name:17} {best * 1000:8.2f} ms/step  ratio {best / plain:5.2f}  "
            f"UNet calls/step {len(shapes[name])} ({batches})"
        )


def timed(action: Any, device: str) -> float:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    action()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
