"""Same picture for the same seed? Our images against ComfyUI's own, side by side.

Each case is one ComfyUI API prompt (full-size SD 1.5 shapes, random weights, 128², 4 steps,
cfg 7, a fixed seed). ComfyUI runs it as an external program: this script writes a small
driver of our own into a temp dir and starts it with the ComfyUI interpreter you name; the
driver imports ComfyUI's modules and calls its public node classes (`nodes.KSampler`,
`nodes.CheckpointLoaderSimple`, ...) in link order, caching outputs by content as ComfyUI
does, and saves each case's sampled latent and decoded image as `.npy`. Meanwhile our side
imports the same prompt with our ComfyUI importer (so Encode Prompt gets weighting "comfy")
and runs it on our engine; each side gets one torch thread by default, since two processes
with a thread per core oversubscribe a small CPU badly.

Per case it prints max |Δ| of the decoded images in uint8 steps (both tools write pixels as
clip(255·x) truncated: "png") and in float·255 ("float"), and the largest latent difference
relative to the latent's range (ours unscaled by the VAE factor, as ComfyUI keeps latents).
Above 1/255 is a different picture. Random weights saturate little of the image but blunt
differences, so the latent column is the sharper one.

ComfyUI is GPL: none of its code is here; it is only run. Without --comfy-python (or the
LATENTLOOM_COMFY_PYTHON and LATENTLOOM_COMFY_ROOT variables, which `make bench` passes on)
this prints how to set one up and exits 0.

    .venv/bin/python -m bench.comfy_side_by_side --comfy-python VENV/bin/python \\
        --comfy-root COMFYUI_DIR [--checkpoint FILE] [--pairs all] [--only REGEX] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

SETUP = """\
No ComfyUI interpreter given (--comfy-python); nothing compared. To set one up, outside
this repository (ComfyUI is GPL: it stays a separate program):
  1. get ComfyUI's source (a release tag or commit of its public repository) into DIR;
  2. python3 -m venv VENV && VENV/bin/pip install torch  (the CPU wheel our venv uses)
     then VENV/bin/pip install torchsde numpy einops transformers tokenizers sentencepiece \\
       safetensors pyyaml Pillow scipy tqdm psutil comfy-kitchen aiohttp yarl pydantic \\
       pydantic-settings
     (torchvision is not needed: the driver puts a stand-in on the path if it is missing;
     SD 1.5 never calls it);
  3. .venv/bin/python -m bench.comfy_side_by_side --comfy-python VENV/bin/python --comfy-root DIR
A full-size random SD 1.5 checkpoint (~2.1 GB) is written to a temp dir unless --checkpoint
names one (`latentloom.models.tiny.make_sd15_checkpoint` makes it)."""

CHECKPOINT = "sd15-random.safetensors"
INPUT_IMAGE = "side-by-side.png"
POSITIVE = "a cozy cabin in a snowy forest at night"
NEGATIVE = "blurry, low quality"
WEIGHTED = "a cozy (cabin:1.3) in a (snowy forest:0.8) at night"
SEED = 42
# Stock ComfyUI on the CPU. (It keeps CLIP weights in fp16 there but computes in fp32; on our
# fp16 checkpoint file adding --fp32-text-enc changed nothing.)
DEFAULT_COMFY_ARGS = ("--cpu",)

# The driver runs under ComfyUI's interpreter: our code, using only ComfyUI's public nodes.
DRIVER = r'''
"""Runs ComfyUI API prompts through ComfyUI's node classes (written by bench/comfy_side_by_side)."""
import importlib.util, json, sys, time
from pathlib import Path

root, stubs, models, inputs, cases_file, out = sys.argv[1:7]
sys.argv = [sys.argv[0], *sys.argv[7:]]  # ComfyUI's own command line flags
sys.path.insert(0, root)
if importlib.util.find_spec("torchvision") is None:
    sys.path.append(stubs)
import comfy.options
comfy.options.enable_args_parsing()
import os
import numpy as np
import torch
torch.set_num_threads(int(os.environ.get("SIDE_BY_SIDE_THREADS", "1")))
import comfy.samplers, folder_paths, nodes
from comfyui_version import __version__

if out == "--list":
    print(json.dumps({"samplers": comfy.samplers.KSampler.SAMPLERS,
                      "schedulers": comfy.samplers.KSampler.SCHEDULERS, "version": __version__}))
    sys.exit(0)
folder_paths.add_model_folder_path("checkpoints", models, is_default=True)
folder_paths.set_input_directory(inputs)
memo = {}


def evaluate(prompt, node_id, done):
    if node_id not in done:
        node, values, parts = prompt[node_id], {}, [prompt[node_id]["class_type"]]
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                outputs, key = evaluate(prompt, value[0], done)
                values[name] = outputs[value[1]]
                parts.append([name, key, value[1]])
            else:
                values[name] = value
                parts.append([name, value])
        key = json.dumps(parts)
        if key not in memo:
            cls = nodes.NODE_CLASS_MAPPINGS[node["class_type"]]
            result = getattr(cls(), cls.FUNCTION)(**values)
            memo[key] = result["result"] if isinstance(result, dict) else result
        done[node_id] = (memo[key], key)
    return done[node_id]


timings = {}
for case in json.loads(Path(cases_file).read_text()):
    started, done = time.perf_counter(), {}
    with torch.inference_mode():  # as ComfyUI's executor runs every prompt
        latent = evaluate(case["prompt"], case["latent"], done)[0][0]["samples"]
        image = evaluate(case["prompt"], case["image"], done)[0][0]
    np.save(Path(out) / f"{case['stem']}.latent.npy", latent.float().numpy())
    np.save(Path(out) / f"{case['stem']}.image.npy", image.float().numpy())
    timings[case["name"]] = time.perf_counter() - started
    print(f"comfy {case['name']}: {timings[case['name']]:.1f} s", flush=True)
(Path(out) / "comfy.json").write_text(json.dumps(
    {"version": __version__, "torch": torch.__version__, "seconds": timings}))
'''

# SD 1.5 through ComfyUI never calls torchvision; its import lines only need the names.
TORCHVISION_STANDIN = {
    "__init__.py": "from . import models, transforms\n",
    "models.py": "def __getattr__(name):\n    raise ImportError('torchvision stand-in: ' + name)\n",
    "transforms.py": "def __getattr__(name):\n    raise ImportError('torchvision stand-in: ' + name)\n",
}


@dataclass(frozen=True)
class Case:
    name: str
    prompt: dict[str, Any]  # ComfyUI API format
    latent: str  # node id whose output 0 is the compared latent
    image: str  # node id whose output 0 is the decoded image

    @property
    def stem(self) -> str:
        """The case's file name stem."""
        return re.sub(r"[^A-Za-z0-9.]+", "_", self.name)


@dataclass(frozen=True)
class Settings:
    steps: int
    cfg: float
    size: int
    seed: int


def _base(text: str, size: int) -> dict[str, Any]:
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["ckpt", 1]}},
        "empty": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": size, "height": size, "batch_size": 1},
        },
    }


def _sampler(
    s: Settings, latent: list[Any], sampler: str, scheduler: str, denoise: float, seed: int
) -> dict[str, Any]:
    inputs = {
        "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0],
        "latent_image": latent, "seed": seed, "steps": s.steps, "cfg": s.cfg,
        "sampler_name": sampler, "scheduler": scheduler, "denoise": denoise,
    }  # fmt: skip
    return {"class_type": "KSampler", "inputs": inputs}


def _decoded(prompt: dict[str, Any], latent_node: str) -> dict[str, Any]:
    prompt["decode"] = {
        "class_type": "VAEDecode",
        "inputs": {"samples": [latent_node, 0], "vae": ["ckpt", 2]},
    }
    # An output node, as both tools ask of a graph; the runs themselves stop at the decode.
    prompt["preview"] = {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]}}
    return prompt


def txt2img(s: Settings, sampler: str, scheduler: str, text: str = POSITIVE) -> dict[str, Any]:
    prompt = _base(text, s.size)
    prompt["sample"] = _sampler(s, ["empty", 0], sampler, scheduler, 1.0, s.seed)
    return _decoded(prompt, "sample")


def img2img(s: Settings, sampler: str, scheduler: str, denoise: float) -> dict[str, Any]:
    prompt = _base(POSITIVE, s.size)
    prompt["load"] = {"class_type": "LoadImage", "inputs": {"image": INPUT_IMAGE}}
    prompt["encode"] = {
        "class_type": "VAEEncode",
        "inputs": {"pixels": ["load", 0], "vae": ["ckpt", 2]},
    }
    prompt["sample"] = _sampler(s, ["encode", 0], sampler, scheduler, denoise, s.seed)
    return _decoded(prompt, "sample")


def blend(s: Settings, factor: float) -> dict[str, Any]:
    prompt = txt2img(s, "euler", "normal")
    prompt["other"] = _sampler(s, ["empty", 0], "euler", "normal", 1.0, s.seed + 1)
    prompt["blend"] = {
        "class_type": "LatentBlend",
        "inputs": {"samples1": ["sample", 0], "samples2": ["other", 0], "blend_factor": factor},
    }
    return _decoded(prompt, "blend")


def pairs(samplers: list[str], schedulers: list[str], every: bool) -> list[tuple[str, str]]:
    """Every sampler on karras, every scheduler on euler; or the whole grid."""
    if every:
        return [(a, b) for a in samplers for b in schedulers]
    chosen = [(a, "karras") for a in samplers if "karras" in schedulers]
    return chosen + [("euler", b) for b in schedulers if b != "karras"]


def build_cases(s: Settings, samplers: list[str], schedulers: list[str], every: bool) -> list[Case]:
    cases = [
        Case(f"{a}/{b}", txt2img(s, a, b), "sample", "decode")
        for a, b in pairs(samplers, schedulers, every)
    ]
    return [
        *cases,
        Case("img2img euler/normal d0.6", img2img(s, "euler", "normal", 0.6), "sample", "decode"),
        Case("img2img dpmpp_2m/karras d0.6", img2img(s, "dpmpp_2m", "karras", 0.6), "sample", "decode"),
        Case("weights (w:1.3) euler/normal", txt2img(s, "euler", "normal", WEIGHTED), "sample", "decode"),
        Case("latent blend 0.3", blend(s, 0.3), "blend", "decode"),
    ]  # fmt: skip


def write_input_image(path: Path, size: int) -> None:
    """A smooth deterministic picture (gradients and a disc) for img2img."""
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.08).astype(np.float64)
    rgb = np.stack([x, y, 0.5 * (1 - x) + 0.5 * disc], axis=-1)
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)


def comfy_command(args: argparse.Namespace, work: Path, cases: list[Case] | None) -> list[str]:
    """The driver's command line under ComfyUI's interpreter; no cases: list its samplers."""
    driver, stubs = work / "comfy_driver.py", work / "stubs"
    driver.write_text(DRIVER)
    for name, text in TORCHVISION_STANDIN.items():
        (stubs / "torchvision").mkdir(parents=True, exist_ok=True)
        (stubs / "torchvision" / name).write_text(text)
    (work / "cases.json").write_text(
        json.dumps([{**c.__dict__, "stem": c.stem} for c in cases or []])
    )
    (work / "comfy").mkdir(exist_ok=True)
    return [
        args.comfy_python, str(driver), str(args.comfy_root.resolve()), str(stubs),
        str(work / "models" / "checkpoints"), str(work / "input"), str(work / "cases.json"),
        "--list" if cases is None else str(work / "comfy"), *args.comfy_arg,
    ]  # fmt: skip


def comfy_offers(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    done = subprocess.run(comfy_command(args, work, None), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the ComfyUI driver failed (exit {done.returncode}): {done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_ours(work: Path, cases: list[Case]) -> dict[str, float]:
    """Each prompt through our importer and engine; the same .npy files under work/ours."""
    from latentloom.engine.setup import make_engine
    from latentloom.graph.workflow import parse_workflow
    from latentloom.interop.comfy.api_format import import_api_prompt

    engine = make_engine(
        model_dirs=[work / "models"],
        output_dir=work / "output",
        input_dir=work / "input",
        device="cpu",
    )
    out, timings = work / "ours", {}
    out.mkdir(exist_ok=True)
    for case in cases:
        started = time.perf_counter()
        workflow = parse_workflow(import_api_prompt(case.prompt).workflow)
        result = engine.run(workflow, targets=[case.latent, case.image])
        latent = result.outputs[case.latent]["latent"]
        unscaled = latent.samples / latent.family.vae_scaling_factor
        np.save(out / f"{case.stem}.latent.npy", unscaled.float().numpy())
        np.save(out / f"{case.stem}.image.npy", result.outputs[case.image]["image"].numpy())
        timings[case.name] = time.perf_counter() - started
        print(f"ours  {case.name}: {timings[case.name]:.1f} s", flush=True)
    return timings


def png(image: np.ndarray) -> np.ndarray:
    """Pixels as both tools write them: clip(255·x), truncated."""
    return np.clip(np.float32(255.0) * image.astype(np.float32), 0, 255).astype(np.uint8)


def compare(work: Path, cases: list[Case]) -> list[tuple[str, int, float, float]]:
    def load(side: str, case: Case, kind: str) -> np.ndarray:
        return np.load(work / side / f"{case.stem}.{kind}.npy")

    rows = []
    for case in cases:
        ours, theirs = load("ours", case, "image"), load("comfy", case, "image")
        if ours.shape != theirs.shape:
            sys.exit(f"{case.name}: our image is {ours.shape}, ComfyUI's {theirs.shape}")
        pixels = int(np.abs(png(ours).astype(np.int16) - png(theirs)).max())
        floats = float(np.abs(ours - theirs).max()) * 255
        latent_ours, latent_theirs = load("ours", case, "latent"), load("comfy", case, "latent")
        latent = float(np.abs(latent_ours - latent_theirs).max() / np.abs(latent_theirs).max())
        rows.append((case.name, pixels, floats, latent))
    return rows


def prepare(args: argparse.Namespace, work: Path) -> None:
    checkpoints = work / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (work / "input").mkdir()
    write_input_image(work / "input" / INPUT_IMAGE, args.size)
    if args.checkpoint:
        (checkpoints / CHECKPOINT).symlink_to(args.checkpoint.resolve())
    else:
        from latentloom.models.tiny import make_sd15_checkpoint

        print("writing a full-size random SD 1.5 checkpoint (~2.1 GB)...", flush=True)
        make_sd15_checkpoint(checkpoints / CHECKPOINT, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--comfy-python",
        default=os.environ.get("LATENTLOOM_COMFY_PYTHON"),
        help="the interpreter of a venv that runs ComfyUI",
    )
    parser.add_argument(
        "--comfy-root",
        type=Path,
        default=os.environ.get("LATENTLOOM_COMFY_ROOT"),
        help="ComfyUI's source folder (has nodes.py)",
    )
    parser.add_argument("--comfy-arg", action="append", help="a ComfyUI flag (default: --cpu); "
                        "repeat for several, e.g. --comfy-arg=--cpu --comfy-arg=--fp32-text-enc")  # fmt: skip
    parser.add_argument("--checkpoint", type=Path, help="a full-size SD 1.5 file to reuse")
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep its files")
    parser.add_argument("--pairs", choices=("default", "all"), default="default")
    parser.add_argument("--only", help="run only the cases whose name matches this regex")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for each side (they run at once)"
    )
    args = parser.parse_args()
    if not args.comfy_python:
        print(SETUP)
        return
    if args.comfy_root is None or not (args.comfy_root / "nodes.py").is_file():
        sys.exit("--comfy-root must name ComfyUI's source folder (the one holding nodes.py)")
    args.comfy_arg = args.comfy_arg or list(DEFAULT_COMFY_ARGS)
    settings = Settings(args.steps, args.cfg, args.size, args.seed)
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as scratch:
        work = args.keep or Path(scratch)
        prepare(args, work)
        offered = comfy_offers(args, work)
        from latentloom.sampling.samplers import SAMPLERS
        from latentloom.sampling.schedules import SCHEDULES

        samplers = [name for name in SAMPLERS if name in offered["samplers"]]
        schedulers = [name for name in SCHEDULES if name in offered["schedulers"]]
        cases = build_cases(settings, samplers, schedulers, args.pairs == "all")
        cases = [c for c in cases if not args.only or re.search(args.only, c.name)]
        # Both sides at once: each is mostly single-model CPU work, and the wall time halves.
        threads = {"SIDE_BY_SIDE_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
        comfy_process = subprocess.Popen(
            comfy_command(args, work, cases), cwd=work, env={**os.environ, **threads}
        )
        torch.set_num_threads(args.threads)
        ours = run_ours(work, cases)
        if comfy_process.wait() != 0:
            sys.exit(f"the ComfyUI driver failed (exit {comfy_process.returncode}); see above")
        comfy = json.loads((work / "comfy" / "comfy.json").read_text())
        rows = compare(work, cases)
    print(
        f"\nComfyUI {offered['version']} (torch {comfy['torch']}, flags "
        f"{' '.join(args.comfy_arg)}) vs Latentloom; full-size SD 1.5 shapes, random weights, "
        f"{args.size}², {args.steps} steps, cfg {args.cfg:g}, seed {args.seed}"
    )
    print(f"{'case':36} {'png Δ':>6} {'float Δ·255':>12} {'latent Δ/max':>13}")
    for name, pixels, floats, latent in rows:
        mark = "" if pixels <= 1 else "  differs"
        print(f"{name:36} {pixels:6d} {floats:12.3f} {latent:13.2e}{mark}")
    agree = sum(1 for row in rows if row[1] <= 1)
    print(f"{agree} of {len(rows)} cases within 1/255")
    ratio = sum(ours.values()) / sum(comfy["seconds"].values())
    print(f"time for all cases, both running at once: ours / ComfyUI = {ratio:.2f}")


if __name__ == "__main__":
    main()
