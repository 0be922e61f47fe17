"""Load: time and peak memory to load a full-size SD 1.5-shaped checkpoint into fp32 on CPU,
against `safetensors.torch.load_file` + a cast of every tensor (the plain floor: no modules).

Writes a random-weight fp16 single-file checkpoint (~2.1 GB, SD 1.5 shapes), warms the page
cache, then runs `--rounds` interleaved rounds, each side in a fresh process so peaks do not
mix, and reports medians:
  - time: our `load_checkpoint` against `load_file` + `.float()`; target <= 1.0x;
  - peak RSS growth over the process before loading, / the fp32 weights (target <= 1.10),
    for both sides, and ours as the whole process too.

Both sides import what they use before the clock starts (torch, safetensors; ours also
diffusers/transformers and the CLIP tokenizers), as the server's warm-up does before a first
job (warmup.py): the figure is the weight load, not imports. Run it on an idle machine: the
ratio of two wall times on a machine shared with other work measures the neighbours.

    .venv/bin/python -m bench.load [--keep FILE] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import add_full_size_options, full_size_sd15

# Resident memory now (not the peak so far, which import-time transients can inflate).
CURRENT_RSS = "int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()"

OURS = f"""
import json, resource, sys, time, torch
from latentloom.models.load import load_checkpoint
from latentloom.warmup import build_tokenizers
build_tokenizers()
before = {CURRENT_RSS}
started = time.perf_counter()
loaded = load_checkpoint(sys.argv[1], device="cpu", dtype=torch.float32)
seconds = time.perf_counter() - started
modules = [loaded.model.unet, loaded.vae.module] + [e.model for e in loaded.clip.encoders]
weights = sum(t.numel() * t.element_size() for m in modules for t in [*m.parameters(), *m.buffers()])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "weights": weights, "peak": peak, "before": before}}))
"""

# The plain way to get the same fp32 tensors: read the file, convert each tensor.
SAFETENSORS = f"""
import json, resource, sys, time, torch
from safetensors.torch import load_file
before = {CURRENT_RSS}
started = time.perf_counter()
tensors = {{name: tensor.float() for name, tensor in load_file(sys.argv[1]).items()}}
seconds = time.perf_counter() - started
weights = sum(t.numel() * t.element_size() for t in tensors.values())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "weights": weights, "peak": peak, "before": before}}))
"""


def measure(script: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def growth_ratio(runs: list[dict[str, float]]) -> float:
    return statistics.median((run["peak"] - run["before"]) / run["weights"] for run in runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    add_full_size_options(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = full_size_sd15(args.keep, scratch)
        load_before = os.getloadavg()[0]
        measure(SAFETENSORS, path)  # warm the page cache so neither side pays for the disk
        ours, baseline = [], []
        for _ in range(args.rounds):
            ours.append(measure(OURS, path))
            baseline.append(measure(SAFETENSORS, path))
        size = path.stat().st_size
        load_after = os.getloadavg()[0]
    gib = 2**30
    weights = median(ours, "weights")
    print(
        f"load, full-size SD 1.5 shapes, random weights, fp16 file {size / gib:.2f} GiB -> fp32 "
        f"on CPU; median of {args.rounds} interleaved rounds; load average "
        f"{load_before:.1f} -> {load_after:.1f}"
    )
    print(f"  loaded fp32 weights            {weights / gib:6.2f} GiB")
    print(
        f"  peak RSS, whole process (ours) {median(ours, 'peak') / gib:6.2f} GiB "
        f"= {median(ours, 'peak') / weights:.3f}x weights"
    )
    print(
        f"  peak RSS growth while loading  ours {growth_ratio(ours):.3f}x weights, "
        f"load_file + .float() {growth_ratio(baseline):.3f}x (target <= 1.10)"
    )
    seconds, floor = median(ours, "seconds"), median(baseline, "seconds")
    print(
        f"  load time: ours {seconds:.2f} s, safetensors load_file + .float() (no modules) "
        f"{floor:.2f} s, ratio {seconds / floor:.2f}x (target <= 1.0x)"
    )


if __name__ == "__main__":
    main()
