"""`make gpu-check`: our engine against diffusers' own pipelines on this machine's GPU.

On a CUDA machine: writes full-size random-weight SD 1.5 and SDXL checkpoints (the published
structures, fp16), runs workflows/txt2img.json and workflows/sdxl_txt2img.json on our engine
in the engine's half precision (euler, karras, cfg 7) at 512² and 1024², and the same job
through diffusers' StableDiffusionPipeline / StableDiffusionXLPipeline built from the same
loaded modules, with the same start noise and the same (nearest) timesteps — the oracle of
tests/test_oracle.py. It prints each side's it/s (timed after one warm-up run each), the
largest latent difference relative to the latent's range, whether our VAE decode (SDXL's
included, in the dtype of vae_dtype.py) gave only finite pixels, the attention processors
the UNet runs (SDPA expected), and peak VRAM. Then the rectified-flow families
(bench/gpu_check_flow.py): SD 3.5 medium in the engine's half precision and FLUX.1-dev at bf16
and at fp8 storage, full-size-shaped random files, 1024², against StableDiffusion3Pipeline /
FluxPipeline on the same module.

Sized to finish within 8 minutes on one H200-class card, by estimate (no card has run it yet):
writing ~38 GB of files (SD 1.5 2.1, SDXL 6.9, SD 3.5 medium ~5, FLUX 23.8; SD's values from
torch.randn, FLUX's sliced from one random pool, so it is bound by the disk: a 1 GB FLUX-width
file took 7 s on a busy 2-core machine) takes 1.5-3 minutes, loading them ~1 minute, and the
sampling (one warm-up and one timed run per side and case, 20 steps; FLUX 1024² at bf16 is
assumed ~0.3 s a step) about 2-3 minutes; FLUX at fp8 upcasts each Linear per call, the
slowest case. `--families`, `--steps`, `--flow-steps` and `--flow-size` trim it where a card
is slower or smaller (FLUX needs ~26 GB of VRAM at bf16), and `--keep DIR` reuses the files.

Without CUDA it says so and runs the same plumbing at tiny sizes on the CPU (tiny random
checkpoints, 64², 2 steps, fp32; FLUX fp8 stored, fp32 computed; no warm-up runs but the
first, which loads), then exits 0:
tests/test_gpu_check.py runs that dry run. Exit status 1 when a check fails (NaN pixels or
latents, or latents apart by more than the tolerance).

    .venv/bin/python -m bench.gpu_check [--dry-run] [--steps 20] [--keep DIR]
        [--families sd15,sdxl,sd35,flux,flux-fp8] [--flow-size 1024] [--flow-steps 20]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
SEED, CFG = 42, 7.0
POSITIVE, NEGATIVE = "a photo of a cat", "blurry"
SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "use_karras_sigmas": True,
    "steps_offset": 1,
}
# Relative to the latent's range. fp32 agrees to ~1e-6 (tests/test_oracle.py); fp16 rounding
# through 20 steps of a full-size UNet moves latents by about 1e-3 of their range.
TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}


@dataclass(frozen=True)
class Case:
    family: str  # "sd15" | "sdxl"
    workflow: str
    size: int
    checkpoint: Path


@dataclass
class Outcome:
    case: Case
    ours_it_s: float
    theirs_it_s: float
    latent_difference: float  # relative to the latent's range
    finite_pixels: bool
    attention: str
    peak_vram_gib: float | None
    compute: str | None = None  # the case's compute dtype when not the engine's


def write_checkpoints(folder: Path, full_size: bool) -> dict[str, Path]:
    """Random-weight checkpoints in the real single-file layout: full size, or tiny."""
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    paths = {name: checkpoints / f"check-{name}.safetensors" for name in ("sd15", "sdxl")}
    if full_size:
        from latentloom.models.tiny import make_sd15_checkpoint

        if not paths["sd15"].exists():
            make_sd15_checkpoint(paths["sd15"], seed=0)
        if not paths["sdxl"].exists():
            write_full_sdxl(paths["sdxl"])
    else:
        from latentloom.models.tiny import make_tiny_checkpoint

        for name, path in paths.items():
            make_tiny_checkpoint(name, path, seed=0)  # type: ignore[arg-type]
    return paths


def write_full_sdxl(path: Path) -> None:
    """The published SDXL base structure (tests/models/test_configs.py), random fp16 weights."""
    from latentloom.models.build import empty_modules
    from latentloom.models.export import write_original_checkpoint
    from latentloom.models.tiny import _RandomWeights, keymap_for
    from tests.models.test_configs import sdxl_base

    modules = empty_modules(sdxl_base())
    components = modules.components()
    states = {name: module.state_dict() for name, module in components.items()}
    write_original_checkpoint(
        path,
        components,
        keymap_for("sdxl", modules),
        dtype=torch.float16,
        fetch=_RandomWeights(0, states),
        metadata={"latentloom.random": "sdxl", "latentloom.seed": "0"},
    )


def run_ours(engine: Any, case: Case, steps: int, seed: int) -> tuple[torch.Tensor, Any, float]:
    """Our graph: (latent, image, seconds the sampler node took)."""
    from latentloom.engine.events import NodeFinished
    from latentloom.graph.workflow import load_workflow_file

    workflow = load_workflow_file(REPO / "workflows" / case.workflow)
    inputs: list[tuple[str, str, Any]] = [
        ("checkpoint", "checkpoint", case.checkpoint.name),
        ("positive", "text", POSITIVE),
        ("negative", "text", NEGATIVE),
        ("latent", "width", case.size),
        ("latent", "height", case.size),
        ("sampler", "sampler", "euler"),
        ("sampler", "scheduler", "karras"),
        ("sampler", "steps", steps),
        ("sampler", "cfg", CFG),
        ("sampler", "seed", seed),
    ]
    for node, name, value in inputs:
        workflow = workflow.with_input(node, name, value)
    seconds: dict[str, float] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, NodeFinished):
            seconds[event.node] = event.seconds

    outputs = engine.run(workflow, targets=["sampler", "decode"], on_event=on_event).outputs
    return outputs["sampler"]["latent"].samples, outputs["decode"]["image"], seconds["sampler"]


def pipeline_for(case: Case, device: torch.device, dtype: torch.dtype) -> Any:
    """diffusers' own pipeline over the modules our loader builds from the same file."""
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    from latentloom.models.load import load_checkpoint
    from tests.sampling.oracles import with_nearest_timesteps

    loaded = load_checkpoint(case.checkpoint, device=device, dtype=dtype)
    scheduler = with_nearest_timesteps(EulerDiscreteScheduler(**SCHEDULE))
    encoders = loaded.clip.encoders
    pipe: Any
    if case.family == "sdxl":
        pipe = StableDiffusionXLPipeline(
            vae=loaded.vae.module,
            text_encoder=encoders[0].model,
            text_encoder_2=encoders[1].model,
            tokenizer=encoders[0].tokenizer,
            tokenizer_2=encoders[1].tokenizer,
            unet=loaded.model.unet,
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=loaded.vae.module,
            text_encoder=encoders[0].model,
            tokenizer=encoders[0].tokenizer,
            unet=loaded.model.unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_theirs(pipe: Any, case: Case, steps: int, seed: int) -> tuple[torch.Tensor, float]:
    """The pipeline from our start, noise * sqrt(1 + sigma_max^2), handed over divided by its
    init_noise_sigma (sigma_max for Euler with Karras sigmas), as in tests/test_oracle.py."""
    from latentloom.models.schedule import alphas_cumprod
    from latentloom.sampling.discrete import DiscreteSchedule

    sigma_max = float(DiscreteSchedule.from_alphas_cumprod(alphas_cumprod()).sigma_max)
    shape = (1, 4, case.size // 8, case.size // 8)
    noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
    start = noise * (1 + sigma_max**2) ** 0.5 / sigma_max
    device = pipe.unet.device
    synchronize(device)
    started = time.perf_counter()
    latent = pipe(
        prompt=POSITIVE,
        negative_prompt=NEGATIVE,
        num_inference_steps=steps,
        guidance_scale=CFG,
        height=case.size,
        width=case.size,
        latents=start.to(device, pipe.unet.dtype),
        output_type="latent",
    ).images
    synchronize(device)
    return latent.float().cpu(), time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def attention_processors(unet: Any) -> str:
    names = sorted({type(processor).__name__ for processor in unet.attn_processors.values()})
    return ", ".join(names)


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / max |theirs|; infinite when either holds NaN or inf."""
    if not (torch.isfinite(ours).all() and torch.isfinite(theirs).all()):
        return float("inf")
    scale = theirs.abs().max().item() or 1.0
    return float((ours - theirs).abs().max().item() / scale)


def check(case: Case, engine: Any, steps: int) -> Outcome:
    device, dtype = engine.settings.device, engine.settings.dtype
    cuda = device.type == "cuda"
    run_ours(engine, case, steps, SEED + 1)  # warm: loads the model, first kernels
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    ours_latent, image, ours_seconds = run_ours(engine, case, steps, SEED)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    pipe = pipeline_for(case, device, dtype)
    attention = attention_processors(pipe.unet)
    if cuda:  # first kernels; a CPU dry run times nothing worth warming for
        run_theirs(pipe, case, steps, SEED + 1)
    theirs_latent, theirs_seconds = run_theirs(pipe, case, steps, SEED)
    difference = relative_difference(ours_latent, theirs_latent)
    del pipe
    if cuda:
        torch.cuda.empty_cache()
    return Outcome(
        case,
        ours_it_s=steps / ours_seconds,
        theirs_it_s=steps / theirs_seconds,
        latent_difference=difference,
        finite_pixels=bool(torch.isfinite(image).all()),
        attention=attention,
        peak_vram_gib=peak,
    )


FAMILIES = ("sd15", "sdxl", "sd35", "flux", "flux-fp8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--steps", type=int, default=20, help="SD 1.5 / SDXL steps")
    parser.add_argument("--flow-steps", type=int, default=20, help="SD 3.5 / FLUX steps")
    parser.add_argument("--flow-size", type=int, default=1024, help="SD 3.5 / FLUX side")
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}"
    )
    parser.add_argument("--keep", type=Path, help="write (or reuse) the checkpoints here")
    args = parser.parse_args(argv)
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # diffusers' numpy 2 use
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda:
        print("gpu-check: no CUDA device here; a dry run of the plumbing at tiny sizes on the CPU")
    steps, flow_steps = (args.steps, args.flow_steps) if cuda else (2, 2)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        started = time.perf_counter()
        paths = write_checkpoints(folder, full_size=cuda)
        print(f"checkpoints written in {time.perf_counter() - started:.1f} s")
        from latentloom.engine.setup import make_engine

        engine = make_engine(
            model_dirs=[folder],
            output_dir=folder / "output",
            input_dir=REPO / "workflows" / "inputs",
            device="cuda" if cuda else "cpu",
        )
        device, dtype = engine.settings.device, engine.settings.dtype
        cases = [
            Case("sd15", "txt2img.json", 512 if cuda else 64, paths["sd15"]),
            Case("sdxl", "sdxl_txt2img.json", 1024 if cuda else 64, paths["sdxl"]),
        ]
        outcomes = [check(case, engine, steps) for case in cases if case.family in families]
        del engine  # its resident models would count in the flow cases' peak VRAM
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        flow = flow_outcomes(folder / "flow", families, device, dtype, cuda, args, flow_steps)
    return report(outcomes, device, dtype, steps) | report_flow(flow, flow_steps)


def flow_outcomes(
    folder: Path,
    families: list[str],
    device: torch.device,
    dtype: torch.dtype,
    cuda: bool,
    args: argparse.Namespace,
    steps: int,
) -> list[Outcome]:
    """SD 3.5 medium and FLUX.1-dev at bf16 / fp8 (bench/gpu_check_flow.py)."""
    from bench.gpu_check_flow import FlowCase, check_flow, write_flow_checkpoints

    wanted = [family for family in families if family in ("sd35", "flux", "flux-fp8")]
    if not wanted:
        return []
    started = time.perf_counter()
    paths = write_flow_checkpoints(folder, full_size=cuda)
    print(f"flow checkpoints written in {time.perf_counter() - started:.1f} s")
    size = args.flow_size if cuda else 64
    # FLUX computes in bf16 on the card (fp32 on the CPU dry run); SD 3.5 in the engine's dtype.
    flux_dtype = torch.bfloat16 if cuda else torch.float32
    cases = {
        "sd35": (FlowCase("sd35m", "sd3", paths["sd3"], size), dtype),
        "flux": (FlowCase("flux", "flux", paths["flux"], size), flux_dtype),
        "flux-fp8": (FlowCase("flux fp8", "flux", paths["flux"], size, "fp8_e4m3fn"), flux_dtype),
    }
    return [check_flow(cases[name][0], device, cases[name][1], steps) for name in wanted]


def report(outcomes: list[Outcome], device: torch.device, dtype: torch.dtype, steps: int) -> int:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, {str(dtype).removeprefix('torch.')}, euler karras, cfg {CFG}, {steps} steps")
    return print_rows(outcomes, dtype)


def report_flow(outcomes: list[Outcome], steps: int) -> int:
    if outcomes:
        print(
            f"flow families: euler simple, {steps} steps; SD 3.5 cfg 4.5, shift 3; "
            "FLUX.1-dev cfg 1, guidance 3.5; random prompt embeddings"
        )
    failed = print_rows(outcomes, None)
    print("gpu-check:", "FAILED" if failed else "passed")
    return failed


def print_rows(outcomes: list[Outcome], dtype: torch.dtype | None) -> int:
    failed = False
    for outcome in outcomes:
        case = outcome.case
        compute = outcome.compute or str(dtype).removeprefix("torch.")
        tolerance = TOLERANCE[getattr(torch, compute)]
        apart = not outcome.latent_difference <= tolerance  # NaN and inf are apart
        failed |= apart or not outcome.finite_pixels
        vram = f"{outcome.peak_vram_gib:.2f} GiB" if outcome.peak_vram_gib is not None else "n/a"
        print(
            f"  {case.family:<8} {case.size}²  ours {outcome.ours_it_s:7.2f} it/s   "
            f"diffusers {outcome.theirs_it_s:7.2f} it/s   "
            f"ratio {outcome.ours_it_s / outcome.theirs_it_s:.2f}x   {compute}"
        )
        verdict = "OVER" if apart else "ok"
        print(
            f"        latent max|Δ|/range {outcome.latent_difference:.2e} "
            f"(tolerance {tolerance:.0e}: {verdict})   "
            f"pixels {'finite' if outcome.finite_pixels else 'NaN/inf: FAILED'}   "
            f"peak VRAM {vram}   attention {outcome.attention}"
        )
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
