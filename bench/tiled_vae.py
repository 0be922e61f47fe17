"""Tiled vs untiled VAE decode of one 1024² image: time ratio and peak memory ratio.

A VAE with the full-size SD 1.5 shapes (random weights, fp32, on the CPU) decodes a seeded
128² latent, each way in a fresh process so peaks do not mix: the full decode
(`vae.decode`) and VAE Decode (Tiled)'s defaults (512-pixel tiles, 64 pixels of overlap: 3 x 3
tiles). Printed: seconds and peak RSS growth over the process before decoding, tiled over
untiled for both, and the largest and mean pixel difference between the two images.

    .venv/bin/python -m bench.tiled_vae [--side 1024] [--tile 512] [--overlap 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CHILD = """
import json, resource, sys, time, torch
from diffusers import AutoencoderKL
from latentloom.models.family import SD15
from latentloom.models.handles import Vae
from latentloom.models.tiny import sd15_configs
from latentloom.vae import decode
from latentloom.vae_tiled import decode_tiled

mode, side, tile, overlap, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.manual_seed(0)
vae = Vae(AutoencoderKL(**sd15_configs().vae).eval(), SD15, "random full-size SD 1.5 VAE")
latent = torch.randn(1, 4, side // 8, side // 8, generator=torch.Generator().manual_seed(0))
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
started = time.perf_counter()
if mode == "full":
    image = decode(vae, latent)
else:
    image = decode_tiled(vae, latent, tile_size=tile, overlap=overlap)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
torch.save(image, out)
print(json.dumps({"seconds": seconds, "growth": peak - before, "peak": peak}))
"""


def measure(mode: str, side: int, tile: int, overlap: int, out: Path) -> dict[str, float]:
    arguments = [mode, str(side), str(tile), str(overlap), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *arguments], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    args = parser.parse_args()
    gib = 2**30
    with tempfile.TemporaryDirectory() as scratch:
        full_image, tiled_image = Path(scratch) / "full.pt", Path(scratch) / "tiled.pt"
        full = measure("full", args.side, args.tile, args.overlap, full_image)
        tiled = measure("tiled", args.side, args.tile, args.overlap, tiled_image)
        difference = (torch.load(tiled_image) - torch.load(full_image)).abs()
    print(
        f"VAE decode of one {args.side}x{args.side} image, full-size SD 1.5 VAE shapes "
        f"(random weights), fp32, CPU; tiles {args.tile} px, overlap {args.overlap} px"
    )
    for name, result in (("untiled", full), ("tiled", tiled)):
        print(
            f"  {name:8} {result['seconds']:7.1f} s   peak RSS growth "
            f"{result['growth'] / gib:5.2f} GiB (process peak {result['peak'] / gib:5.2f} GiB)"
        )
    print(f"  time ratio tiled / untiled:            {tiled['seconds'] / full['seconds']:.2f}")
    print(f"  peak RSS growth ratio tiled / untiled: {tiled['growth'] / full['growth']:.2f}")
    print(
        f"  pixel difference (0..1): max {difference.max().item():.4f}, "
        f"mean {difference.mean().item():.5f}"
    )


if __name__ == "__main__":
    main()
