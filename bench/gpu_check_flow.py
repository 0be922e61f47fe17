"""`make gpu-check`, the rectified-flow families: SD 3.5 medium and FLUX.1-dev (bf16 and fp8).

Full-size-shaped random files in the published layouts (SD 3.5 medium: transformer and VAE by
`sd3_tiny.write_full_size_sd3`; FLUX.1-dev: the transformer in Black Forest Labs' names, from
the published config below, written here tensor by tensor), loaded by our loaders, then
sampled twice on the same module: by our KSampler path (`sampling.run.sample`, euler,
"simple") and by diffusers' StableDiffusion3Pipeline / FluxPipeline, from the same start
noise, the same sigmas (handed to diffusers unshifted, as in tests/test_oracle_sd3.py and
tests/test_oracle_flux.py) and the same random prompt embeddings — text encoders are not part
of a step, so none are built. FLUX at fp8 stores its Linear weights in float8_e4m3fn and
computes in bf16 (`weight_dtype.py`); both sides run that same module.

Random values come from one seeded pool of 2^24 normals, each tensor a slice of it (x 0.02):
writing 24 GB of FLUX is then bound by the disk, not by the random generator.

Without CUDA the same plumbing runs at tiny sizes on the CPU in fp32 (fp8 stored, fp32
computed), 64², 2 steps, no warm-up runs: tests/test_gpu_check.py runs it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SD3_CFG, SD3_SHIFT, FLUX_GUIDANCE, SEED = 4.5, 3.0, 3.5, 42
# Tokens of the random prompt embeddings: SD 3 concatenates 77 CLIP and (ComfyUI's) 77 T5
# tokens; FLUX.1-dev's pipelines use 512 T5 tokens.
SD3_TOKENS, FLUX_TOKENS = 154, 512
POOL_SIZE = 2**24

# FLUX.1-dev as published (black-forest-labs/FLUX.1-dev transformer/config.json).
FLUX_DEV: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "out_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}


@dataclass(frozen=True)
class FlowCase:
    label: str  # as the report prints it: "sd35m", "flux", "flux fp8"
    family: str  # "sd3" | "flux"
    checkpoint: Path
    size: int
    weight_dtype: str = "default"  # or "fp8_e4m3fn" (weight_dtype.py)


def _pool_values(seed: int) -> Any:
    """`produce` for write_safetensors: each tensor a slice of one seeded normal pool."""
    pool = torch.randn(POOL_SIZE, generator=torch.Generator().manual_seed(seed)) * 0.02

    def produce(spec: Any) -> torch.Tensor:
        count = math.prod(spec.shape)
        start = (len(spec.name) * 7919) % POOL_SIZE
        repeats = (start + count) // POOL_SIZE + 1
        flat = pool.repeat(repeats)[start : start + count] if repeats > 1 else pool[start:][:count]
        return flat.reshape(spec.shape).to(spec.dtype)

    return produce


def write_flux_transformer(
    path: Path, config: dict[str, Any], *, dtype: torch.dtype = torch.bfloat16, seed: int = 0
) -> Path:
    """A FLUX transformer file in the original names (as `flux1-dev.safetensors`), shapes from
    `config` (built on the meta device), values from the seeded pool."""
    from diffusers import FluxTransformer2DModel

    from latentloom.models.flux_keys import flux_target
    from latentloom.models.flux_tiny import flux_original_names
    from latentloom.models.safetensors_write import TensorSpec, write_safetensors

    with torch.device("meta"):
        module: Any = FluxTransformer2DModel(**config)
    shapes = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
    hidden = config["num_attention_heads"] * config["attention_head_dim"]
    specs = []
    for name in flux_original_names(config):
        target = flux_target(name, hidden)
        assert target is not None, name
        parts = [shapes[key] for key in target.keys]
        specs.append(TensorSpec(name, dtype, (sum(p[0] for p in parts), *parts[0][1:])))
    write_safetensors(path, specs, _pool_values(seed), {"latentloom.random": "flux-dev"})
    return path


def write_flow_checkpoints(folder: Path, full_size: bool) -> dict[str, Path]:
    from latentloom.models.sd3_tiny import SD35_MEDIUM, write_full_size_sd3
    from latentloom.models.tiny import make_tiny_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"sd3": folder / "check-sd35m.safetensors", "flux": folder / "check-flux.safetensors"}
    if full_size:
        if not paths["sd3"].exists():
            write_full_size_sd3(paths["sd3"], SD35_MEDIUM)
        if not paths["flux"].exists():
            write_flux_transformer(paths["flux"], FLUX_DEV)
    else:
        from latentloom.models.flux_tiny import tiny_flux_config

        make_tiny_checkpoint("sd3", paths["sd3"], seed=0)
        write_flux_transformer(paths["flux"], tiny_flux_config("dev", 32, 32), dtype=torch.float16)
    return paths


def load_model(case: FlowCase, device: torch.device, dtype: torch.dtype) -> Any:
    from latentloom.models.weight_dtype import weight_storage

    weights = weight_storage(case.weight_dtype, device, dtype)
    if case.family == "sd3":
        from latentloom.models.load import load_checkpoint

        return load_checkpoint(
            case.checkpoint, device=device, dtype=weights.compute, weights=weights
        )
    from latentloom.models.flux_model import load_flux_unet

    return load_flux_unet(case.checkpoint, device=device, dtype=weights)


def prompts(case: FlowCase, network: Any, full_size: bool) -> tuple[torch.Tensor, ...]:
    """Random (embeds, pooled) for positive and negative, the network's widths."""
    config = network.config
    tokens = (SD3_TOKENS if case.family == "sd3" else FLUX_TOKENS) if full_size else 16
    generator = torch.Generator().manual_seed(SEED)
    width, pooled = config["joint_attention_dim"], config["pooled_projection_dim"]
    return tuple(
        torch.randn(shape, generator=generator)
        for shape in ((1, tokens, width), (1, pooled), (1, tokens, width), (1, pooled))
    )


def flow_sigmas(model: Any, steps: int) -> tuple[torch.Tensor, float]:
    """The unshifted t of our sigmas (euler, simple) for diffusers, and the model's shift."""
    from latentloom.sampling.run import ksampler_sigmas

    sigmas = ksampler_sigmas(model, "euler", "simple", steps, 1.0)
    shift = float(model.model_sampling.shift)
    s = sigmas[:-1].double()
    return (s / (shift - (shift - 1) * s)).float(), shift


def run_ours(
    case: FlowCase, model: Any, embeds: tuple[torch.Tensor, ...], steps: int
) -> tuple[torch.Tensor, float]:
    from latentloom.models.handles import Conditioning, ConditioningEntry
    from latentloom.sampling.run import sample

    guidance = FLUX_GUIDANCE if case.family == "flux" else None
    positive = Conditioning((ConditioningEntry(embeds[0], embeds[1], guidance=guidance),))
    negative = Conditioning((ConditioningEntry(embeds[2], embeds[3], guidance=guidance),))
    latent = torch.zeros(1, 16, case.size // 8, case.size // 8)
    cfg = SD3_CFG if case.family == "sd3" else 1.0
    started = time.perf_counter()
    result = sample(model, positive, negative, latent, seed=SEED, steps=steps, cfg=cfg,
                    sampler="euler", scheduler="simple")  # fmt: skip
    return result, time.perf_counter() - started  # sample returns on the CPU: synchronized


def run_theirs(
    case: FlowCase, model: Any, vae: Any, embeds: tuple[torch.Tensor, ...], steps: int
) -> tuple[torch.Tensor, float]:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, StableDiffusion3Pipeline

    from latentloom.models.flux_call import pack, unpack

    network = model.unet
    device, dtype = next(network.parameters()).device, compute_dtype(network)
    unshifted, shift = flow_sigmas(model, steps)
    h = w = case.size // 8
    noise = torch.randn((1, 16, h, w), generator=torch.manual_seed(SEED))
    positive, pooled, negative, negative_pooled = (e.to(device, dtype) for e in embeds)
    pipe: Any
    if case.family == "sd3":
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        pipe = StableDiffusion3Pipeline(
            transformer=network, scheduler=scheduler, vae=vae, text_encoder=None,
            tokenizer=None, text_encoder_2=None, tokenizer_2=None, text_encoder_3=None,
            tokenizer_3=None,
        )  # fmt: skip
        arguments = {
            "prompt_embeds": positive,
            "pooled_prompt_embeds": pooled,
            "negative_prompt_embeds": negative,
            "negative_pooled_prompt_embeds": negative_pooled,
            "guidance_scale": SD3_CFG,
            "latents": noise.to(device, dtype),
        }
    else:
        mu = math.log(shift)  # dev: diffusers shifts the t it is given by exp(mu) itself
        scheduler = FlowMatchEulerDiscreteScheduler(
            use_dynamic_shifting=True, shift=1.0, base_shift=mu, max_shift=mu
        )
        pipe = FluxPipeline(
            scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
            text_encoder_2=None, tokenizer_2=None, transformer=network,
        )  # fmt: skip
        arguments = {
            "prompt_embeds": positive,
            "pooled_prompt_embeds": pooled,
            "guidance_scale": FLUX_GUIDANCE,
            "latents": pack(noise).to(device, dtype),
        }
    pipe.set_progress_bar_config(disable=True)
    started = time.perf_counter()
    out = pipe(height=case.size, width=case.size, num_inference_steps=steps,
               sigmas=unshifted.tolist(), output_type="latent", return_dict=False,
               **arguments)[0]  # fmt: skip
    latent = out.float().cpu()  # synchronizes
    seconds = time.perf_counter() - started
    return (unpack(latent, h, w) if case.family == "flux" else latent), seconds


def compute_dtype(network: Any) -> torch.dtype:
    from latentloom.models.weight_dtype import compute_dtype as of

    return of(network)


def check_flow(case: FlowCase, device: torch.device, dtype: torch.dtype, steps: int) -> Any:
    """One flow case as gpu_check's Outcome: load, warm each side once, time one run each."""
    from bench.gpu_check import Case, Outcome, attention_processors, relative_difference

    cuda = device.type == "cuda"
    loaded = load_model(case, device, dtype)
    model = loaded.model if case.family == "sd3" else loaded
    vae = loaded.vae.module if case.family == "sd3" else None
    embeds = prompts(case, model.unet, full_size=cuda)
    if cuda:
        run_ours(case, model, embeds, min(steps, 2))  # warm: first kernels
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    ours, ours_seconds = run_ours(case, model, embeds, steps)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    if cuda:
        run_theirs(case, model, vae, embeds, min(steps, 2))
    theirs, theirs_seconds = run_theirs(case, model, vae, embeds, steps)
    outcome = Outcome(
        Case(case.label, case.family, case.size, case.checkpoint),
        ours_it_s=steps / ours_seconds,
        theirs_it_s=steps / theirs_seconds,
        latent_difference=relative_difference(ours, theirs),
        finite_pixels=bool(torch.isfinite(ours).all()),  # no decode here: the latent's
        attention=attention_processors(model.unet),
        peak_vram_gib=peak,
        compute=str(compute_dtype(model.unet)).removeprefix("torch."),
    )
    del loaded, model, vae
    if cuda:
        torch.cuda.empty_cache()
    return outcome
