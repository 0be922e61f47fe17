"""Oracle: our SD 3.5 txt2img graph against diffusers' own StableDiffusion3Pipeline.

Both get the same tiny SD 3.5 modules (as our loader built them from the single-file
checkpoint: MMDiT, VAE, CLIP-L, CLIP-G, T5), the same prompts, the same start noise, the same
T5 length (77, ComfyUI's for SD 3) and the same sigmas: ours from KSampler's `simple`
schedule on the shift-3 flow table, handed to the pipeline unshifted (its
FlowMatchEulerDiscreteScheduler applies shift 3.0 itself), and checked equal before sampling.
The pipeline runs its own text encoding, classifier-free guidance and Euler loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

from latentloom.engine.executor import Engine
from latentloom.models.load import load_checkpoint
from latentloom.sampling.sigma_ops import ksampler_sigmas
from tests.support import load_example

# diffusers' schedulers call np.array(tensor, copy=False) on numpy 2; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SEED, STEPS, CFG, SIZE, SHIFT = 42, 6, 4.5, 256, 3.0
POSITIVE, NEGATIVE = "a photo of a cat", "blurry"


def run_graph(engine: Engine) -> torch.Tensor:
    workflow = load_example("sd35_txt2img.json")
    # The example gives each of CLIP-L, CLIP-G and T5 its own prompt: the same text in all three
    # is what the pipeline's single prompt means.
    settings: list[tuple[str, str, str | int | float]] = [
        *(
            (node, encoder, text)
            for node, text in (("positive", POSITIVE), ("negative", NEGATIVE))
            for encoder in ("clip_l", "clip_g", "t5xxl")
        ),
        ("sampler", "sampler", "euler"),
        ("sampler", "scheduler", "simple"),
        ("sampler", "steps", STEPS),
        ("sampler", "cfg", CFG),
        ("sampler", "seed", SEED),
    ]
    for node, name, value in settings:
        workflow = workflow.with_input(node, name, value)
    return engine.run(workflow, targets=["sampler"]).outputs["sampler"]["latent"].samples


def test_txt2img_matches_stable_diffusion_3_pipeline(models_dir: Path, engine: Engine) -> None:
    loaded = load_checkpoint(
        models_dir / "checkpoints" / "tiny-sd3.safetensors", device="cpu", dtype=None
    )
    clip_l, clip_g, t5 = loaded.clip.encoders
    pipe: Any = StableDiffusion3Pipeline(
        transformer=loaded.model.unet,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=SHIFT),
        vae=loaded.vae.module,
        text_encoder=clip_l.model,
        tokenizer=clip_l.tokenizer,
        text_encoder_2=clip_g.model,
        tokenizer_2=clip_g.tokenizer,
        text_encoder_3=t5.model,
        tokenizer_3=t5.tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    ours = ksampler_sigmas(loaded.model, "euler", "simple", STEPS)
    # The scheduler shifts what it is given: hand it the unshifted t of each of our sigmas.
    unshifted = ours[:-1] / (SHIFT - (SHIFT - 1) * ours[:-1])
    pipe.scheduler.set_timesteps(sigmas=unshifted.tolist())
    assert torch.allclose(pipe.scheduler.sigmas, ours, atol=1e-6)

    noise = torch.randn(
        (1, 16, SIZE // 8, SIZE // 8), generator=torch.Generator().manual_seed(SEED)
    )
    expected = pipe(
        prompt=POSITIVE,
        negative_prompt=NEGATIVE,
        num_inference_steps=STEPS,
        sigmas=unshifted.tolist(),
        guidance_scale=CFG,
        height=SIZE,
        width=SIZE,
        latents=noise,  # the flow start at sigma 1 is the noise itself, in both
        max_sequence_length=77,
        output_type="latent",
    ).images
    latent = run_graph(engine)
    assert latent.shape == expected.shape == (1, 16, 32, 32)
    # Measured: 1.8e-6 absolute on latents of magnitude 4.6 that moved up to 2.8 from the start
    # noise; float rounding only (the pipeline batches [uncond, cond] in one call).
    assert torch.allclose(latent, expected, atol=1e-5, rtol=0), (latent - expected).abs().max()
