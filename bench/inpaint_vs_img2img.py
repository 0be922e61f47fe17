"""An inpaint job against an img2img job of the same size: what masking costs.

The same graph twice, on the tiny SD 1.x checkpoint with the example inputs: Load Image →
VAE Encode (for Inpaint), whose latent carries the image's mask as its noise mask → KSampler
→ VAE Decode → Save Image, against the same graph with plain VAE Encode (no mask). A third
case runs the inpaint graph on a tiny inpainting checkpoint (a UNet with 9 input channels:
the mask and the masked-image latent go in with every call). Each round changes the seed, so
the sampler, decode and save run every time while the loaded checkpoint stays cached, as in
a session of edits; rounds interleave the cases and the median is reported.

    .venv/bin/python -m bench.inpaint_vs_img2img [--steps 12] [--size 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import WORKFLOWS, cpu_engine, tiny_models
from latentloom.graph.workflow import parse_workflow
from latentloom.models.tiny import make_tiny_checkpoint

INPAINT_CHECKPOINT = "tiny-sd15-inpaint.safetensors"


def graphs(steps: int, size: int) -> dict[str, dict[str, Any]]:
    inpaint = json.loads((WORKFLOWS / "inpaint.json").read_text())
    nodes = inpaint["nodes"]
    nodes["sampler"]["inputs"].update(steps=steps, denoise=1.0)
    nodes["scale"] = {
        "type": "image.scale",
        "inputs": {
            "image": {"node": "image", "output": "image"},
            "upscale_method": "bilinear",
            "width": size,
            "height": size,
            "crop": "disabled",
        },
    }
    nodes["encode"]["inputs"]["image"] = {"node": "scale", "output": "image"}
    img2img = copy.deepcopy(inpaint)
    img2img["nodes"]["encode"] = {
        "type": "image.vae_encode",
        "inputs": {
            "vae": {"node": "checkpoint", "output": "vae"},
            "image": {"node": "scale", "output": "image"},
        },
    }
    model = copy.deepcopy(inpaint)
    model["nodes"]["checkpoint"]["inputs"]["checkpoint"] = INPAINT_CHECKPOINT
    return {"img2img": img2img, "inpaint": inpaint, "inpaint model": model}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        checkpoints = tiny_models(root) / "checkpoints"
        make_tiny_checkpoint("sd15", checkpoints / INPAINT_CHECKPOINT, seed=0, inpaint=True)
        engine = cpu_engine(root)
        cases = graphs(args.steps, args.size)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_index in range(args.rounds + 1):  # round 0 loads the checkpoints: not timed
            for name, document in cases.items():
                document["nodes"]["sampler"]["inputs"]["seed"] = round_index
                workflow = parse_workflow(document)
                started = time.perf_counter()
                engine.run(workflow)
                if round_index:
                    times[name].append(time.perf_counter() - started)
    baseline = statistics.median(times["img2img"])
    print(f"inpaint vs img2img, tiny SD 1.x, {args.size}², {args.steps} euler steps, CPU")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<14} {median * 1000:8.1f} ms   {median / baseline:5.2f}x img2img")


if __name__ == "__main__":
    main()
