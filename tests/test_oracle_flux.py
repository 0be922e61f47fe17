"""FLUX.1 dev and schnell against diffusers' FluxPipeline on the tiny transformer.

Both sides start from the same noise (ours [B, 16, h, w], packed for diffusers), run the same
sigmas and the same guidance, with cfg 1 (FLUX is guidance-distilled or few-step: no uncond
pass). Our sigmas come from the model's own sampling (dev: mu 1.15 on 10,000 entries, schnell:
shift 1), "simple" schedule; diffusers is handed the unshifted t of each sigma and shifts them
by the same mu itself (`use_dynamic_shifting` with base = max shift = mu), so the shift
formula is checked too. The transformer is loaded from its tiny file in the original layout,
so the key map is part of what is compared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.models.flux_call import pack, unpack
from latentloom.models.flux_model import load_flux_unet
from latentloom.models.flux_tiny import make_tiny_flux_transformer
from latentloom.models.handles import Conditioning, ConditioningEntry
from latentloom.sampling.run import ksampler_sigmas, sample

TOLERANCE = 1e-5  # measured: 2.4e-7 (dev), 4.8e-7 (schnell) on the final latent


def _diffusers_latent(
    transformer: Any, embeds: torch.Tensor, pooled: torch.Tensor, noise: torch.Tensor,
    t: torch.Tensor, mu: float | None, guidance: float,
) -> torch.Tensor:  # fmt: skip
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=mu is not None, shift=1.0, base_shift=mu or 0.5, max_shift=mu or 1.15
    )
    pipe: Any = FluxPipeline(
        scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
        text_encoder_2=None, tokenizer_2=None, transformer=transformer,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    height, width = noise.shape[-2:]
    out = pipe(
        prompt_embeds=embeds,
        pooled_prompt_embeds=pooled,
        height=height * 8,
        width=width * 8,
        num_inference_steps=len(t),
        sigmas=t.numpy(),
        guidance_scale=guidance,
        latents=pack(noise),
        output_type="latent",
        return_dict=False,
    )[0]
    return unpack(out, height, width)


@pytest.mark.parametrize(("variant", "steps"), [("dev", 3), ("schnell", 2)])
def test_flux_matches_flux_pipeline(tmp_path: Path, variant: Any, steps: int) -> None:
    path = make_tiny_flux_transformer(
        tmp_path / f"flux1-{variant}.safetensors", variant, context_width=32, pooled_width=32
    )
    model = load_flux_unet(path, device=torch.device("cpu"), dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    embeds = torch.randn(1, 16, 32, generator=generator)
    pooled = torch.randn(1, 32, generator=generator)
    guidance = 3.5 if variant == "dev" else None
    cond = Conditioning((ConditioningEntry(embeds, pooled, guidance=guidance),))
    latent = torch.zeros(1, 16, 6, 4)
    ours = sample(model, cond, cond, latent, seed=5, steps=steps, cfg=1.0, sampler="euler",
                  scheduler="simple")  # fmt: skip

    sigmas = ksampler_sigmas(model, "euler", "simple", steps, 1.0)
    assert float(sigmas[0]) == 1.0 and float(sigmas[-1]) == 0.0
    shift = float(model.model_sampling.shift)  # type: ignore[attr-defined]
    assert shift == pytest.approx(math.exp(1.15) if variant == "dev" else 1.0, rel=1e-12)
    s = sigmas[:-1].double()
    t = (s / (shift - (shift - 1) * s)).float()  # the inverse of the shift
    noise = torch.randn(latent.shape, generator=torch.manual_seed(5))
    mu = math.log(shift) if variant == "dev" else None
    theirs = _diffusers_latent(model.unet, embeds, pooled, noise, t, mu, 3.5)
    assert ours.shape == (1, 16, 6, 4)
    assert float(theirs.abs().max()) > 1.0  # a real result, not zeros
    assert float((ours - theirs).abs().max()) < TOLERANCE
