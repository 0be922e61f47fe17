"""Big weights: load time and peak RSS per weight dtype choice, on a moderately sized UNet.

Writes a random SD 1.5-structured UNet at a fraction of SD 1.5's width (default 1/2: ~215M
parameters) as a diffusers-named single file, once in fp16 (as checkpoints ship) and once in
fp32. Then, each in a fresh process so peaks do not mix, Load Diffusion Model's loader
(`load_unet`) on the CPU with each `weight_dtype` choice, printing:
  - the bytes the loaded weights hold, and the load time;
  - peak RSS growth while loading / those bytes (target <= 1.10: no second copy), and the same
    after touching every weight once (memory-mapped pages count only once read);
  - then how much of the process is anonymous memory and how much file-backed (memory-mapped
    weights are file pages: shared between processes, and reclaimable by the kernel);
  - the baseline: `safetensors.torch.load_file` of the same file, tensors converted to fp32
    (no modules built), whose time is the reference.

    .venv/bin/python -m bench.big_weights [--width 0.5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STATUS = """
def status(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1]) * 1024
    return 0
"""

OURS = (
    STATUS
    + """
import json, sys, time, torch
from diffusers import UNet2DConditionModel
from latentloom.models.component_load import load_unet
from latentloom.models.weight_dtype import weight_bytes, weight_storage
cpu = torch.device("cpu")
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) restarts from here
started = time.perf_counter()
weights = weight_storage(sys.argv[2], cpu, torch.float32)
model = load_unet(__import__("pathlib").Path(sys.argv[1]), device=cpu, dtype=weights.compute,
                  weights=weights)
seconds = time.perf_counter() - started
loaded = status("VmHWM")
with torch.no_grad():  # touch every weight once, as a first step would
    for tensor in model.unet.parameters():
        tensor.float().sum()
print(json.dumps({"seconds": seconds, "weights": weight_bytes(model.unet), "peak": loaded,
                  "touched": status("VmHWM"), "before": before, "anon": status("RssAnon"),
                  "file": status("RssFile")}))
"""
)

SAFETENSORS = (
    STATUS
    + """
import json, sys, time, torch
from safetensors.torch import load_file
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
started = time.perf_counter()
tensors = {name: tensor.float() for name, tensor in load_file(sys.argv[1]).items()}
seconds = time.perf_counter() - started
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "peak": peak, "before": before}))
"""
)

CHOICES = ("default", "fp16", "bf16", "fp8_e4m3fn", "fp8_e5m2")


def write_unet(path: Path, width: float, dtype_name: str) -> None:
    """A random UNet with SD 1.5's structure and `width` times its channels, as one file."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    channels = [int(c * width) // 32 * 32 for c in (320, 640, 1280, 1280)]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=tuple(channels), cross_attention_dim=768, attention_head_dim=8
    )
    dtype = getattr(torch, dtype_name)
    state = {k: v.to(dtype).contiguous() for k, v in unet.state_dict().items()}
    save_file(state, str(path))


def measure(script: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=float, default=0.5, help="fraction of SD 1.5's width")
    parser.add_argument("--keep", type=Path, help="write (or reuse) the files in this folder")
    args = parser.parse_args()
    mib = 2**20
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for stored in ("float16", "float32"):
            files[stored] = folder / f"unet-{args.width}-{stored}.safetensors"
            if not files[stored].exists():
                write_unet(files[stored], args.width, stored)
        runs = [("float32", "default")] + [("float16", choice) for choice in CHOICES]
        print(f"big weights: SD 1.5-structured UNet at {args.width}x width, CPU, fp32 compute")
        print(f"  {'file':8} {'weight_dtype':12} {'held MiB':>9} {'load s':>7} "
              f"{'peak/held':>9} {'touched':>8} {'anon MiB':>9} {'file MiB':>9}")  # fmt: skip
        for stored, choice in runs:
            measure(SAFETENSORS, str(files[stored]))  # warm the page cache
            ours = measure(OURS, str(files[stored]), choice)
            growth = ours["peak"] - ours["before"]
            print(
                f"  {stored[5:]:8} {choice:12} {ours['weights'] / mib:9.1f} "
                f"{ours['seconds']:7.2f} {growth / ours['weights']:9.3f} "
                f"{(ours['touched'] - ours['before']) / ours['weights']:8.3f} "
                f"{ours['anon'] / mib:9.1f} {ours['file'] / mib:9.1f}"
            )
        baseline = measure(SAFETENSORS, str(files["float16"]))
        print(
            f"  baseline: safetensors load_file + .float() of the fp16 file "
            f"{baseline['seconds']:.2f} s, peak growth "
            f"{(baseline['peak'] - baseline['before']) / mib:.1f} MiB"
        )


if __name__ == "__main__":
    main()
