"""Load: peak memory and time to load a full-size SD 1.5-shaped checkpoint into fp32 on CPU.

Writes a random-weight fp16 single-file checkpoint (~2.1 GB, SD 1.5 shapes), then, each in a
fresh process so peaks do not mix:
  - our loader: peak RSS / bytes of the loaded fp32 weights (target <= 1.10), reported both
    as the whole process and as growth over the process before loading (imports included);
  - `safetensors.torch.load_file` of the same file, each tensor converted to fp32 (no
    modules built): its time is the baseline for ours.

    .venv/bin/python -m bench.load [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# Resident memory now (not the peak so far, which import-time transients can inflate).
CURRENT_RSS = "int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()"

OURS = f"""
import json, resource, sys, time, torch
import diffusers, transformers
from latentloom.models.load import load_checkpoint
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
SAFETENSORS = """
import json, resource, sys, time, torch
from safetensors.torch import load_file
before = 0
started = time.perf_counter()
tensors = {name: tensor.float() for name, tensor in load_file(sys.argv[1]).items()}
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak, "before": before}))
"""


def measure(script: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--keep", type=Path, help="write (or reuse) the checkpoint here instead of a temp dir"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "sd15-random.safetensors"
        if not path.exists():
            from latentloom.models.tiny import make_sd15_checkpoint

            make_sd15_checkpoint(path)
        measure(SAFETENSORS, path)  # warm the page cache so neither side pays for the disk
        ours = measure(OURS, path)
        baseline = measure(SAFETENSORS, path)
        size = path.stat().st_size
    gib = 2**30
    print(
        f"load, full-size SD 1.5 shapes, random weights, fp16 file {size / gib:.2f} GiB -> fp32 on CPU"
    )
    print(f"  loaded fp32 weights          {ours['weights'] / gib:6.2f} GiB")
    print(
        f"  peak RSS, whole process      {ours['peak'] / gib:6.2f} GiB = {ours['peak'] / ours['weights']:.3f}x weights"
    )
    growth = ours["peak"] - ours["before"]
    print(
        f"  peak RSS growth while loading {growth / gib:5.2f} GiB = {growth / ours['weights']:.3f}x weights "
        f"(target <= 1.10)"
    )
    print(
        f"  load time: ours {ours['seconds']:.2f} s, safetensors load_file + .float() (no modules) "
        f"{baseline['seconds']:.2f} s, ratio {ours['seconds'] / baseline['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
