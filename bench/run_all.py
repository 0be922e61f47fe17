"""Run every benchmark in turn (`make bench`). The load benchmark writes a ~2 GB file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = [
    "bench.engine_overhead",
    "bench.end_to_end",
    "bench.cache",
    "bench.sampler_step",
    "bench.regional_conditioning",
    "bench.inpaint_vs_img2img",
    "bench.load",
    "bench.server_startup",
    "bench.first_image",
    "bench.server_queue",
    "bench.server_fanout",
    "bench.server_wall_time",
    "bench.server_event_loop",
    "bench.comfy_import",
    "bench.comfy_api_overhead",
    "bench.comfy_side_by_side",  # prints how to set ComfyUI up unless LATENTLOOM_COMFY_* are set
    "bench.comfy_first_image",  # the same: cold process -> first image against ComfyUI's server
    "bench.worker_process",
    "bench.model_listing",
    "bench.controlnet_step",
    "bench.tiled_vae",
    "bench.flux_step",
    "bench.sd35_load",  # writes a ~5 GB file and needs ~11 GB of memory
    "bench.big_weights",
    "bench.ray_workers",
]

if __name__ == "__main__":
    for module in BENCHMARKS:
        print(f"$ python -m {module}", flush=True)
        subprocess.run([sys.executable, "-m", module], cwd=REPO, check=True)
        print(flush=True)
