"""Load: peak memory and time to load a full-size SD 3.5 medium-shaped checkpoint into fp32 on CPU.

Writes (once, into a temp dir unless --keep names a file) a random-weight fp16 single file with
SD 3.5 medium's MMDiT (24 joint blocks of width 1536, attn2 in blocks 0-12, 384^2 positions)
and its 16-channel VAE, ~5 GB, the layout Stability publishes (text encoders kept apart). Then,
each in a fresh process so peaks do not mix:
  - our loader: peak RSS growth / bytes of the loaded fp32 weights (target <= 1.10);
  - the plain way to the same fp32 tensors, safetensors' `safe_open` reading each tensor and
    converting it (no modules built): its time is the baseline for ours.

    .venv/bin/python -m bench.sd35_load [--keep FILE]

Needs about 11 GB of free memory (the fp32 weights are ~10 GB).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.load import CURRENT_RSS, measure

OURS = f"""
import json, resource, sys, time, torch
import diffusers, transformers
from latentloom.models.load import load_checkpoint
before = {CURRENT_RSS}
started = time.perf_counter()
loaded = load_checkpoint(sys.argv[1], device="cpu", dtype=torch.float32)
seconds = time.perf_counter() - started
assert loaded.model.family.name == "sd3", loaded.model.family
modules = [loaded.model.unet, loaded.vae.module] + [e.model for e in loaded.clip.encoders]
weights = sum(t.numel() * t.element_size() for m in modules for t in [*m.parameters(), *m.buffers()])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "weights": weights, "peak": peak, "before": before}}))
"""

# Tensor by tensor, so the baseline holds the fp32 result and one fp16 tensor, as ours does.
SAFETENSORS = """
import json, resource, sys, time, torch
from safetensors import safe_open
started = time.perf_counter()
with safe_open(sys.argv[1], framework="pt") as file:
    tensors = {name: file.get_tensor(name).float() for name in file.keys()}
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak, "before": 0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--keep", type=Path, help="write (or reuse) the checkpoint here instead of a temp dir"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "sd35-medium-random.safetensors"
        if not path.exists():
            from latentloom.models.sd3_tiny import SD35_MEDIUM, write_full_size_sd3

            write_full_size_sd3(path, SD35_MEDIUM)
        measure(SAFETENSORS, path)  # warm the page cache so neither side pays for the disk
        ours = measure(OURS, path)
        baseline = measure(SAFETENSORS, path)
        size = path.stat().st_size
    gib = 2**30
    print(
        f"load, full-size SD 3.5 medium shapes (MMDiT + VAE), random weights, fp16 file "
        f"{size / gib:.2f} GiB -> fp32 on CPU"
    )
    print(f"  loaded fp32 weights           {ours['weights'] / gib:6.2f} GiB")
    growth = ours["peak"] - ours["before"]
    print(
        f"  peak RSS growth while loading {growth / gib:6.2f} GiB = "
        f"{growth / ours['weights']:.3f}x weights (target <= 1.10)"
    )
    print(
        f"  peak RSS, whole process       {ours['peak'] / gib:6.2f} GiB = "
        f"{ours['peak'] / ours['weights']:.3f}x weights"
    )
    print(
        f"  load time: ours {ours['seconds']:.2f} s, safetensors get_tensor + .float() "
        f"(no modules) {baseline['seconds']:.2f} s, ratio {ours['seconds'] / baseline['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
