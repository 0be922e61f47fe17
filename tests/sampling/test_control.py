"""ControlNet and T2I-Adapter residuals in the guided denoiser, against diffusers.

Oracles: diffusers' StableDiffusionControlNetPipeline and StableDiffusionXLControlNetPipeline
run on the same tiny UNet and ControlNet, the same embeddings, control image, start noise and
(nearest) timesteps as our `sample()` with euler / karras; the tolerance is the one the plain
sampler oracle meets (1e-5 of the latent's scale). For T2I-Adapters, diffusers' adapter
pipelines need a full text stack, so the oracle is the pipeline's loop written out: the UNet
called with the adapter's features as `down_intrablock_additional_residuals`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetPipeline,
    UNet2DConditionModel,
)
from torch import Tensor

from latentloom.models.controlnet_source import AdapterSource, ControlModel, ControlNetSource
from latentloom.models.family import SD15, SDXL
from latentloom.models.handles import Conditioning, ControlSource, DiffusionModel
from latentloom.models.tiny_control import tiny_adapter, tiny_controlnet
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.regions import percent_to_sigma
from latentloom.sampling.run import sample
from latentloom.sampling.sigma_ops import ksampler_sigmas
from tests.sampling.oracles import IGNORE_DIFFUSERS_NUMPY_WARNINGS, compare
from tests.sampling.test_denoiser import CFG, SEED, STEPS, karras_scheduler, model_for, ours
from tests.sampling.tiny_models import CONTEXT_DIM, LATENT_SHAPE, conditioning, latent_noise

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS
TOLERANCE = 1e-5
PIXELS = LATENT_SHAPE[-1] * 8


def control_image(seed: int = 5, size: tuple[int, int] = (PIXELS, PIXELS)) -> Tensor:
    """An IMAGE ([1, H, W, 3] in 0..1)."""
    return torch.rand(1, *size, 3, generator=torch.Generator().manual_seed(seed))


def controlnet_for(model: DiffusionModel, seed: int = 0) -> ControlModel:
    unet: Any = model.unet
    module = tiny_controlnet(dict(unet.config), seed)
    return ControlModel(module, "controlnet", model.family, "tiny-test-controlnet")


def with_control(conditioning: Conditioning, *sources: ControlSource) -> Conditioning:
    return Conditioning(
        tuple(replace(e, control=e.control + sources) for e in conditioning.entries)
    )


def tiny_vae() -> Any:
    # Only its scale factor (8) and image processor are used: output_type="latent".
    return AutoencoderKL(block_out_channels=(32, 32, 32, 32), norm_num_groups=32, latent_channels=4)


def pipeline_latents(
    model: DiffusionModel, control: ControlModel, image: Tensor, sdxl: bool
) -> Tensor:
    scheduler = karras_scheduler()
    positive, negative = conditioning(1, pooled=sdxl), conditioning(2, pooled=sdxl)
    common: dict[str, Any] = {
        "vae": tiny_vae(),
        "text_encoder": None,
        "tokenizer": None,
        "unet": model.unet,
        "controlnet": control.module,
        "scheduler": scheduler,
    }
    if sdxl:
        pipe: Any = StableDiffusionXLControlNetPipeline(
            **common, text_encoder_2=None, tokenizer_2=None, add_watermarker=False
        )
        extra = {
            "pooled_prompt_embeds": positive.first.pooled,
            "negative_pooled_prompt_embeds": negative.first.pooled,
        }
    else:
        pipe = StableDiffusionControlNetPipeline(
            **common, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
        extra = {}
    pipe.set_progress_bar_config(disable=True)
    sigma_max = float(scheduler.sigmas[0])
    start = latent_noise(SEED) * (1 + sigma_max**2) ** 0.5 / sigma_max
    return pipe(
        prompt_embeds=positive.first.embeds,
        negative_prompt_embeds=negative.first.embeds,
        image=image.movedim(-1, 1),
        num_inference_steps=STEPS,
        guidance_scale=CFG,
        height=PIXELS,
        width=PIXELS,
        latents=start,
        output_type="latent",
        **extra,
    ).images


@pytest.mark.parametrize("sdxl", [False, True])
def test_controlnet_matches_diffusers_pipeline(sdxl: bool) -> None:
    model = model_for(karras_scheduler(), sdxl=sdxl)
    control, image = controlnet_for(model), control_image()
    expected = pipeline_latents(model, control, image, sdxl)
    source = ControlNetSource(control, image)
    positive = with_control(conditioning(1, pooled=sdxl), source)
    negative = with_control(conditioning(2, pooled=sdxl), source)
    got = ours(model, positive, negative)
    plain = ours(model, conditioning(1, pooled=sdxl), conditioning(2, pooled=sdxl))
    assert compare(got, expected) <= TOLERANCE
    # The ControlNet matters: without it the result is far from the pipeline's.
    assert compare(plain, expected) > 100 * TOLERANCE


def test_strength_zero_is_exactly_no_controlnet() -> None:
    model = model_for(karras_scheduler())
    source = ControlNetSource(controlnet_for(model), control_image(), strength=0.0)
    calls = count_forward(source.model.module)
    got = ours(model, with_control(conditioning(1), source), with_control(conditioning(2), source))
    assert torch.equal(got, ours(model, conditioning(1), conditioning(2)))
    assert calls == []


def count_forward(module: Any) -> list[float]:
    """The timestep of every forward call of `module`."""
    seen: list[float] = []
    module.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(
            float(kwargs.get("timestep", args[1] if len(args) > 1 else None))
        ),
        with_kwargs=True,
    )
    return seen


def test_start_and_end_percent_switch_at_the_right_step() -> None:
    model = model_for(karras_scheduler())
    source = ControlNetSource(
        controlnet_for(model), control_image(), start_percent=0.2, end_percent=0.6
    )
    calls = count_forward(source.model.module)

    positive, negative = (
        with_control(conditioning(1), source),
        with_control(conditioning(2), source),
    )
    sample(
        model,
        positive,
        negative,
        torch.zeros(LATENT_SHAPE),
        seed=SEED,
        steps=STEPS,
        cfg=CFG,
        sampler="euler",
        scheduler="karras",
    )
    schedule = DiscreteSchedule.from_alphas_cumprod(model.alphas_cumprod)
    sigmas = [float(s) for s in ksampler_sigmas(model, "euler", "karras", STEPS, 1.0)[:-1]]
    start, end = percent_to_sigma(schedule, 0.2), percent_to_sigma(schedule, 0.6)
    active = [end <= s <= start for s in sigmas]
    # Some steps before, some within, some after: the window is not trivially all or none.
    assert active[0] is False and True in active and active[-1] is False
    timesteps = [
        float(schedule.sigma_to_nearest_t(torch.tensor(s)))
        for s, a in zip(sigmas, active, strict=True)
        if a
    ]
    assert calls == timesteps


def test_stacked_sources_add_their_residuals() -> None:
    model = model_for(karras_scheduler())
    control, image = controlnet_for(model), control_image()
    a, b = (
        ControlNetSource(control, image, strength=0.25),
        ControlNetSource(control, image, strength=0.5),
    )
    one = ControlNetSource(control, image, strength=0.75)
    stacked = ours(model, with_control(conditioning(1), a, b), with_control(conditioning(2), a, b))
    single = ours(model, with_control(conditioning(1), one), with_control(conditioning(2), one))
    assert compare(stacked, single) <= TOLERANCE
    assert compare(stacked, ours(model, conditioning(1), conditioning(2))) > 100 * TOLERANCE


def test_different_sources_on_each_side_take_separate_calls() -> None:
    model = model_for(karras_scheduler())
    source = ControlNetSource(controlnet_for(model), control_image())
    batches: list[int] = []
    unet: Any = model.unet
    unet.register_forward_pre_hook(lambda m, args: batches.append(args[0].shape[0]))
    ours(model, with_control(conditioning(1), source), conditioning(2))
    assert batches == [1, 1] * STEPS


def test_the_control_image_is_centre_cropped_and_resized_to_the_latent() -> None:
    model = model_for(karras_scheduler())
    wide = control_image(size=(PIXELS, 2 * PIXELS))
    source = ControlNetSource(controlnet_for(model), wide)
    hint = source.hint(PIXELS, PIXELS, torch.device("cpu"), torch.float32)
    quarter = PIXELS // 2
    assert torch.equal(hint, wide[:, :, quarter : quarter + PIXELS].movedim(-1, 1))


def sd15_structured_unet() -> Any:
    """A UNet whose first level has attention, as SD 1.5's (T2I-Adapters are built for it)."""
    torch.manual_seed(0)
    unet: Any = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CONTEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    return unet.eval()


@torch.no_grad()
def adapter_loop(model: DiffusionModel, adapter: Any, image: Tensor, scale: float) -> Tensor:
    """StableDiffusionAdapterPipeline's denoising loop, written out."""
    scheduler = karras_scheduler()
    embeds = torch.cat([conditioning(2).first.embeds, conditioning(1).first.embeds])
    features = [f * scale for f in adapter(image.movedim(-1, 1))]
    features = [torch.cat([f] * 2) for f in features]
    latents = latent_noise(SEED) * torch.sqrt(1.0 + scheduler.sigmas[0].to(torch.float32) ** 2.0)
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        unet: Any = model.unet
        output = unet(
            model_input,
            t,
            encoder_hidden_states=embeds,
            return_dict=False,
            down_intrablock_additional_residuals=[f.clone() for f in features],
        )[0]
        uncond, cond = output.chunk(2)
        latents = scheduler.step(uncond + CFG * (cond - uncond), t, latents, return_dict=False)[0]
    return latents


def test_t2i_adapter_matches_the_adapter_pipeline_loop() -> None:
    base = model_for(karras_scheduler())
    model = replace(base, unet=sd15_structured_unet())
    adapter = tiny_adapter("sd15")
    image = control_image()
    source = AdapterSource(
        ControlModel(adapter, "t2i_adapter", SD15, "tiny-adapter"), image, strength=0.8
    )
    got = ours(model, with_control(conditioning(1), source), with_control(conditioning(2), source))
    expected = adapter_loop(model, adapter, image, 0.8)
    assert compare(got, expected) <= TOLERANCE
    assert compare(ours(model, conditioning(1), conditioning(2)), expected) > 100 * TOLERANCE


def test_sdxl_t2i_adapter_fits_the_tiny_sdxl_unet() -> None:
    from latentloom.models.tiny import tiny_unet_config

    unet: Any = UNet2DConditionModel(**tiny_unet_config("sdxl"))
    unet.eval()
    model = DiffusionModel(unet, SDXL, "epsilon", base_alphas(), "tiny-sdxl")
    adapter = tiny_adapter("sdxl")
    source = AdapterSource(
        ControlModel(adapter, "t2i_adapter", SDXL, "tiny-xl-adapter"), control_image()
    )
    positive = with_control(conditioning_xl(1), source)
    negative = with_control(conditioning_xl(2), source)
    got = ours(model, positive, negative)
    assert got.shape == LATENT_SHAPE and bool(torch.isfinite(got).all())
    assert compare(got, ours(model, conditioning_xl(1), conditioning_xl(2))) > 100 * TOLERANCE


def base_alphas() -> Tensor:
    return karras_scheduler().alphas_cumprod.double()


def conditioning_xl(seed: int) -> Conditioning:
    from latentloom.models.tiny import TINY_TEXT_WIDTH

    generator = torch.Generator().manual_seed(seed)
    return Conditioning.of(
        torch.randn(1, 77, 2 * TINY_TEXT_WIDTH, generator=generator),
        torch.randn(1, TINY_TEXT_WIDTH, generator=generator),
    )


def test_a_controlnet_of_another_family_is_refused_by_name() -> None:
    sdxl = model_for(karras_scheduler(), sdxl=True)
    model = model_for(karras_scheduler())
    source = ControlNetSource(controlnet_for(sdxl), control_image())
    with pytest.raises(ValueError) as caught:
        ours(model, with_control(conditioning(1), source), with_control(conditioning(2), source))
    assert str(caught.value) == (
        "ControlNet tiny-test-controlnet is for SDXL, but the model being sampled is not SDXL "
        "with 32-wide text embeddings; load a ControlNet made for the checkpoint's family"
    )


def test_an_area_entry_gets_the_whole_image_fitted_to_its_box() -> None:
    from latentloom.models.handles import LatentArea

    model = model_for(karras_scheduler())
    source = ControlNetSource(controlnet_for(model), control_image())
    hints: list[tuple[int, ...]] = []
    module: Any = source.model.module
    module.register_forward_pre_hook(
        lambda m, args, kwargs: hints.append(tuple(kwargs["controlnet_cond"].shape)),
        with_kwargs=True,
    )
    area = replace(conditioning(3).first, area=LatentArea(4, 8, 0, 0), control=(source,))
    positive = Conditioning((conditioning(1).first, area))
    ours(model, positive, conditioning(2), steps=2)
    # Per step one ControlNet call: the 4x8 area with its negative partner, which keeps the
    # area's sources as ComfyUI's partner does (the whole-latent entries carry none).
    assert hints == [(2, 3, 32, 64)] * 2
