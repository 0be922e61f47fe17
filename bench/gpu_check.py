"""`make gpu-check`: our engine against diffusers' own pipelines on this machine's GPU.

On a CUDA machine: writes full-size random-weight SD 1.5 and SDXL checkpoints (the published
structures, fp16), runs workflows/txt2img.json and workflows/sdxl_txt2img.json on our engine
in the engine's half precision (euler, karras, cfg 7) at 512² and 1024², and the same job
through diffusers' StableDiffusionPipeline / StableDiffusionXLPipeline built from the same
loaded modules, with the same start noise and the same (nearest) timesteps — the oracle of
tests/test_oracle.py. It prints each side's it/s (timed after one warm-up run each), the
largest latent difference relative to the latent's range, whether our VAE decode (SDXL's
included, in the dtype of vae_dtype.py) gave only finite pixels, the attention processors
the UNet runs (SDPA expected), and peak VRAM. Sized to finish within 8 minutes on one card.

Without CUDA it says so and runs the same plumbing at tiny sizes on the CPU (tiny random
checkpoints, 64², 3 steps, fp32), then exits 0: tests/test_gpu_check.py runs that dry run.
Exit status 1 when a check fails (NaN pixels, or latents apart by more than the tolerance).

    .venv/bin/python -m bench.gpu_check [--dry-run] [--steps 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
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
    run_theirs(pipe, case, steps, SEED + 1)
    theirs_latent, theirs_seconds = run_theirs(pipe, case, steps, SEED)
    scale = theirs_latent.abs().max().item() or 1.0
    difference = (ours_latent - theirs_latent).abs().max().item() / scale
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="write (or reuse) the checkpoints here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # diffusers' numpy 2 use
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda:
        print("gpu-check: no CUDA device here; a dry run of the plumbing at tiny sizes on the CPU")
    steps = args.steps if cuda else 3
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
        cases = [
            Case("sd15", "txt2img.json", 512 if cuda else 64, paths["sd15"]),
            Case("sdxl", "sdxl_txt2img.json", 1024 if cuda else 64, paths["sdxl"]),
        ]
        outcomes = [check(case, engine, steps) for case in cases]
    return report(outcomes, engine.settings.device, engine.settings.dtype, steps)


def report(outcomes: list[Outcome], device: torch.device, dtype: torch.dtype, steps: int) -> int:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, {str(dtype).removeprefix('torch.')}, euler karras, cfg {CFG}, {steps} steps")
    failed = False
    for outcome in outcomes:
        case = outcome.case
        tolerance = TOLERANCE[dtype]
        apart = outcome.latent_difference > tolerance
        failed |= apart or not outcome.finite_pixels
        vram = f"{outcome.peak_vram_gib:.2f} GiB" if outcome.peak_vram_gib is not None else "n/a"
        print(
            f"  {case.family:<5} {case.size}²  ours {outcome.ours_it_s:7.2f} it/s   "
            f"diffusers {outcome.theirs_it_s:7.2f} it/s   "
            f"ratio {outcome.ours_it_s / outcome.theirs_it_s:.2f}x"
        )
        verdict = "OVER" if apart else "ok"
        print(
            f"        latent max|Δ|/range {outcome.latent_difference:.2e} "
            f"(tolerance {tolerance:.0e}: {verdict})   "
            f"pixels {'finite' if outcome.finite_pixels else 'NaN/inf: FAILED'}   "
            f"peak VRAM {vram}   attention {outcome.attention}"
        )
    print("gpu-check:", "FAILED" if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
