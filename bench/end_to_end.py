"""End to end: the txt2img workflow through the engine vs diffusers' pipeline directly.

Same tiny SD 1.x modules, sampler (euler, Karras sigmas), steps, size and prompts; both sides
encode the prompts, sample, decode and write a PNG on every repeat, with the models already
loaded (the engine's cache keeps the checkpoint; the prompts change each repeat so the
engine re-encodes them, as the pipeline does). Target: ratio <= 1.05 on CPU.

    .venv/bin/python bench/end_to_end.py [--steps 20] [--size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import warnings
from pathlib import Path

import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

from bench.common import WORKFLOWS, cpu_engine, median_seconds, tiny_models
from latentloom.graph.workflow import load_workflow_file
from latentloom.models.load import load_checkpoint

SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "use_karras_sigmas": True,
    "steps_offset": 1,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        models = tiny_models(root)
        engine = cpu_engine(root)
        workflow = load_workflow_file(WORKFLOWS / "txt2img.json")
        for node, name, value in [
            ("sampler", "sampler", "euler"),
            ("sampler", "scheduler", "karras"),
            ("sampler", "steps", args.steps),
            ("latent", "width", args.size),
            ("latent", "height", args.size),
        ]:
            workflow = workflow.with_input(node, name, value)
        counter = itertools.count()

        def engine_run() -> None:
            engine.run(
                workflow.with_input("positive", "text", f"a photo of cat number {next(counter)}")
            )

        pipe = pipeline(models / "checkpoints" / "tiny-sd15.safetensors")
        out = root / "pipeline.png"

        def pipeline_run() -> None:
            image = pipe(
                prompt=f"a photo of cat number {next(counter)}",
                negative_prompt="blurry, low quality",
                num_inference_steps=args.steps,
                guidance_scale=7.0,
                height=args.size,
                width=args.size,
                generator=torch.Generator("cpu").manual_seed(42),
            ).images[0]
            image.save(out)

        engine_run(), pipeline_run()  # warm-up: loads the checkpoint into the engine's cache
        # Interleave the two so drift in machine load hits both alike.
        engine_times, pipeline_times = [], []
        for _ in range(args.repeats):
            engine_times.append(median_seconds(engine_run, 1))
            pipeline_times.append(median_seconds(pipeline_run, 1))
    engine_s, pipeline_s = (
        sorted(engine_times)[len(engine_times) // 2],
        sorted(pipeline_times)[len(pipeline_times) // 2],
    )
    print(
        f"end to end, tiny SD 1.x, {args.size}x{args.size}, {args.steps} steps euler/karras, "
        f"CPU threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"  engine (txt2img workflow)   {engine_s * 1000:8.1f} ms")
    print(f"  diffusers pipeline          {pipeline_s * 1000:8.1f} ms (baseline)")
    print(f"  ratio engine / pipeline: {engine_s / pipeline_s:.3f} (target <= 1.05)")


def pipeline(path: Path) -> StableDiffusionPipeline:
    loaded = load_checkpoint(path, device="cpu", dtype=None)
    text = loaded.clip.encoders[0]
    pipe = StableDiffusionPipeline(
        vae=loaded.vae.module,
        text_encoder=text.model,
        tokenizer=text.tokenizer,
        unet=loaded.model.unet,
        scheduler=EulerDiscreteScheduler(**SCHEDULE),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


if __name__ == "__main__":
    main()
