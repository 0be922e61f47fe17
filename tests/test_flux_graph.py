"""Oracle: the FLUX.1 example graphs against diffusers' own FluxPipeline.

The graphs are the examples (`workflows/flux_dev.json`, `flux_schnell.json`): Load Diffusion
Model (UNETLoader) on the tiny transformer file, Dual CLIP Loader type flux on the tiny CLIP-L
and T5-XXL files, Load VAE on the tiny AE, Encode Prompt (FLUX) (CLIPTextEncodeFlux), for dev
Flux Guidance 3.5, EmptySD3LatentImage 256x256, KSampler euler / simple / cfg 1, VAE Decode.
The pipeline gets the very modules the graph loaded (transformer, CLIP-L, T5, AE and their
tokenizers), encodes the prompts itself (T5 at 256 tokens, ComfyUI's FLUX length), starts
from the same noise (ours packed into tokens) and runs the same sigmas: ours handed over
unshifted, its FlowMatchEulerDiscreteScheduler shifting them by the same mu (dev: 1.15, the
model's default; schnell: shift 1), checked equal before sampling.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import Workflow, parse_workflow
from latentloom.models.flux_call import pack, unpack
from latentloom.sampling.sigma_ops import ksampler_sigmas
from tests.support import load_example

# diffusers' schedulers call np.array(tensor, copy=False) on numpy 2; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SEED, SIZE = 7, 256
PROMPT = "a red fox in fresh snow at dawn, soft golden light"
TOLERANCE = 1e-5  # the SD families'; measured 7.2e-7 (dev and schnell) on the final latent
STEPS = {"dev": 6, "schnell": 4}  # the examples'


def example(variant: str) -> Workflow:
    workflow = load_example(f"flux_{variant}.json")
    assert workflow.nodes["sampler"].inputs["steps"] == STEPS[variant]
    return workflow


def with_guidance_node(workflow: Workflow, guidance: float) -> Workflow:
    """Flux Guidance between the positive prompt and the sampler (dev has one already)."""
    document = workflow.to_json()
    nodes = document["nodes"]
    if "guidance" not in nodes:
        nodes["guidance"] = {
            "type": "conditioning.flux_guidance",
            "inputs": {"conditioning": {"node": "positive", "output": "conditioning"}},
        }
        nodes["sampler"]["inputs"]["positive"] = {"node": "guidance", "output": "conditioning"}
    nodes["guidance"]["inputs"]["guidance"] = guidance
    return parse_workflow(document)


def run(engine: Engine, workflow: Workflow) -> dict[str, Any]:
    result = engine.run(workflow, targets=["sampler", "model", "clip", "vae"])
    detection = result.reports["model"]["detection"][0]
    assert (detection["family"], detection["prediction"]) == ("FLUX.1", "flow")
    return {node: outputs for node, outputs in result.outputs.items()}


def pipeline_latent(outputs: dict[str, Any], sigmas: torch.Tensor, guidance: float) -> torch.Tensor:
    model = outputs["model"]["model"]
    clip_l, t5 = outputs["clip"]["clip"].encoders
    shift = float(model.model_sampling.shift)
    mu = math.log(shift) if shift != 1.0 else None
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=mu is not None, shift=1.0, base_shift=mu or 0.5, max_shift=mu or 1.15
    )
    pipe: Any = FluxPipeline(
        scheduler=scheduler,
        vae=outputs["vae"]["vae"].module,
        text_encoder=clip_l.model,
        tokenizer=clip_l.tokenizer,
        text_encoder_2=t5.model,
        tokenizer_2=t5.tokenizer,
        transformer=model.unet,
    )
    pipe.set_progress_bar_config(disable=True)
    unshifted = sigmas[:-1] / (shift - (shift - 1) * sigmas[:-1])  # the scheduler shifts them
    pipe.scheduler.set_timesteps(sigmas=unshifted.tolist(), mu=mu)
    assert torch.allclose(pipe.scheduler.sigmas, sigmas, atol=1e-6)
    noise = torch.randn((1, 16, SIZE // 8, SIZE // 8), generator=torch.manual_seed(SEED))
    packed = pipe(
        prompt=PROMPT,
        prompt_2=PROMPT,
        height=SIZE,
        width=SIZE,
        num_inference_steps=len(unshifted),
        sigmas=unshifted.tolist(),
        guidance_scale=guidance,
        latents=pack(noise),  # the flow start at sigma 1 is the noise itself, in both
        max_sequence_length=256,
        output_type="latent",
        return_dict=False,
    )[0]
    return unpack(packed, SIZE // 8, SIZE // 8)


@pytest.mark.parametrize("variant", ["dev", "schnell"])
def test_example_graph_matches_flux_pipeline(engine: Engine, variant: str) -> None:
    outputs = run(engine, example(variant))
    model = outputs["model"]["model"]
    assert model.family.name == "flux"
    assert model.model_sampling.shift == pytest.approx(
        math.exp(1.15) if variant == "dev" else 1.0, rel=1e-12
    )
    sigmas = ksampler_sigmas(model, "euler", "simple", STEPS[variant])
    assert float(sigmas[0]) == 1.0 and float(sigmas[-1]) == 0.0
    expected = pipeline_latent(outputs, sigmas, guidance=3.5)
    latent = outputs["sampler"]["latent"]
    assert latent.family is not None and latent.family.name == "flux"
    assert latent.samples.shape == expected.shape == (1, 16, 32, 32)
    start = torch.randn((1, 16, 32, 32), generator=torch.manual_seed(SEED))
    assert float((expected - start).abs().max()) > 0.5  # the pipeline really moved the latent
    difference = float((latent.samples - expected).abs().max())
    assert difference < TOLERANCE, difference


def test_flux_guidance_steers_dev_and_not_schnell(engine: Engine) -> None:
    def graph(variant: str, guidance: float) -> Workflow:  # 2 steps: enough to tell
        return with_guidance_node(example(variant), guidance).with_input("sampler", "steps", 2)

    def latent(variant: str, guidance: float) -> torch.Tensor:
        workflow = graph(variant, guidance)
        return engine.run(workflow, targets=["sampler"]).outputs["sampler"]["latent"].samples

    # The oracle at 1.5: the guidance reaches dev's embedder as the pipeline's does.
    outputs = run(engine, graph("dev", 1.5))
    sigmas = ksampler_sigmas(outputs["model"]["model"], "euler", "simple", 2)
    expected = pipeline_latent(outputs, sigmas, guidance=1.5)
    assert float((outputs["sampler"]["latent"].samples - expected).abs().max()) < TOLERANCE
    assert not torch.equal(outputs["sampler"]["latent"].samples, latent("dev", 3.5))
    # Schnell has no guidance embedder: the value is carried and ignored, bit for bit.
    assert torch.equal(latent("schnell", 3.5), latent("schnell", 1.5))
