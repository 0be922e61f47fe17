"""Union ControlNets: detection, loading (diffusers file and folder), types, and oracles.

Oracles: diffusers' StableDiffusionXLControlNetUnionPipeline on the same tiny UNet and union
ControlNet, noise and sigmas as our sampler with a control type set (the tolerance of the
other ControlNet oracles); for "auto", which diffusers has no call for, ComfyUI's meaning:
with the type embedding's output layer zeroed the union net is exactly the plain ControlNet
made of its shared weights.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import ControlNetModel, StableDiffusionXLControlNetUnionPipeline

from latentloom.models.controlnet import load_control_model
from latentloom.models.controlnet_source import ControlModel, ControlNetSource
from latentloom.models.controlnet_union import UNION_PREFIXES, UNION_TYPES, union_residuals
from latentloom.models.controlnet_union_tiny import (
    make_tiny_union_controlnet,
    tiny_union_controlnet,
)
from latentloom.models.handles import ControlCall, DiffusionModel
from latentloom.models.tiny import tiny_unet_config
from tests.sampling.oracles import IGNORE_DIFFUSERS_NUMPY_WARNINGS, compare
from tests.sampling.test_control import PIXELS, control_image, tiny_vae, with_control
from tests.sampling.test_denoiser import CFG, SEED, STEPS, karras_scheduler, model_for, ours
from tests.sampling.tiny_models import conditioning, latent_noise

pytestmark = IGNORE_DIFFUSERS_NUMPY_WARNINGS
TOLERANCE = 1e-5


def union_for(model: DiffusionModel, types: int = 8, union_type: int | None = 3) -> ControlModel:
    unet: Any = model.unet
    module = tiny_union_controlnet(dict(unet.config), seed=1, types=types)
    return ControlModel(module, "controlnet", model.family, "tiny-union", union_type=union_type)


@pytest.mark.parametrize("layout", ["diffusers", "folder"])
def test_union_files_load_the_written_weights(tmp_path: Path, layout: Any) -> None:
    path = make_tiny_union_controlnet(tmp_path / "union.safetensors", layout=layout)
    loaded = load_control_model(path, device="cpu", dtype=torch.float32)
    assert type(loaded.module).__name__ == "ControlNetUnionModel"
    assert (loaded.kind, loaded.family.name, loaded.is_union) == ("controlnet", "sdxl", True)
    assert loaded.layout.endswith("(union)" if layout == "diffusers" else "diffusers folder")
    expected = tiny_union_controlnet(tiny_unet_config("sdxl"), 0).state_dict()
    module: Any = loaded.module
    got = module.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k].half().float()) for k in got)
    assert module.config.num_control_type == 8


def pipeline_latents(model: DiffusionModel, control: ControlModel, image: Any, mode: int) -> Any:
    scheduler = karras_scheduler()
    positive, negative = conditioning(1, pooled=True), conditioning(2, pooled=True)
    pipe: Any = StableDiffusionXLControlNetUnionPipeline(
        vae=tiny_vae(),
        text_encoder=None,
        text_encoder_2=None,
        tokenizer=None,
        tokenizer_2=None,
        unet=model.unet,
        controlnet=control.module,
        scheduler=scheduler,
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    sigma_max = float(scheduler.sigmas[0])
    return pipe(
        prompt_embeds=positive.first.embeds,
        negative_prompt_embeds=negative.first.embeds,
        pooled_prompt_embeds=positive.first.pooled,
        negative_pooled_prompt_embeds=negative.first.pooled,
        control_image=[image.movedim(-1, 1)],
        control_mode=[mode],
        num_inference_steps=STEPS,
        guidance_scale=CFG,
        height=PIXELS,
        width=PIXELS,
        latents=latent_noise(SEED) * (1 + sigma_max**2) ** 0.5 / sigma_max,
        output_type="latent",
    ).images


def test_a_control_type_matches_diffusers_union_pipeline() -> None:
    model = model_for(karras_scheduler(), sdxl=True)
    control, image = union_for(model, union_type=UNION_TYPES["depth"]), control_image()
    expected = pipeline_latents(model, control, image, UNION_TYPES["depth"])
    source = ControlNetSource(control, image)
    positive = with_control(conditioning(1, pooled=True), source)
    negative = with_control(conditioning(2, pooled=True), source)
    assert compare(ours(model, positive, negative), expected) <= TOLERANCE
    other = ControlNetSource(replace(control, union_type=UNION_TYPES["openpose"]), image)
    moved = ours(
        model,
        with_control(conditioning(1, pooled=True), other),
        with_control(conditioning(2, pooled=True), other),
    )
    assert compare(moved, expected) > 100 * TOLERANCE  # the type matters


def call_for(model: DiffusionModel) -> tuple[ControlCall, Any]:
    generator = torch.Generator().manual_seed(4)
    positive = conditioning(1, pooled=True).first
    time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])
    assert positive.pooled is not None
    added = {"text_embeds": positive.pooled, "time_ids": time_ids}
    x = torch.randn(1, 4, 8, 8, generator=generator)
    call = ControlCall(x, torch.tensor(500.0), torch.tensor(3.0), positive.embeds, added, 1)
    return call, torch.rand(1, 3, 64, 64, generator=generator)


def test_auto_is_the_hint_without_the_task_stage() -> None:
    model = model_for(karras_scheduler(), sdxl=True)
    union: Any = union_for(model, union_type=None).module
    with torch.no_grad():
        union.control_add_embedding.linear_2.weight.zero_()
        union.control_add_embedding.linear_2.bias.zero_()
    shared = {k: v for k, v in union.state_dict().items() if not k.startswith(UNION_PREFIXES)}
    accepted = inspect.signature(ControlNetModel.__init__).parameters
    plain: Any = ControlNetModel(**{k: v for k, v in union.config.items() if k in accepted})
    plain.load_state_dict(shared)  # strict: the union net is a ControlNet plus its task stage
    call, hint = call_for(model)
    down, mid = union_residuals(
        union, call.x_in, call.timestep, call.context, hint, call.added_cond, None
    )
    with torch.no_grad():
        plain_down, plain_mid = plain(
            call.x_in,
            call.timestep,
            encoder_hidden_states=call.context,
            controlnet_cond=hint,
            added_cond_kwargs=call.added_cond,
            return_dict=False,
        )
    assert max(float((a - b).abs().max()) for a, b in zip(down, plain_down, strict=True)) < 1e-6
    assert float((mid - plain_mid).abs().max()) < 1e-6


def test_a_type_the_model_lacks_is_refused_naming_the_known_ones() -> None:
    model = model_for(karras_scheduler(), sdxl=True)
    union: Any = union_for(model, types=6).module
    call, hint = call_for(model)
    with pytest.raises(ValueError, match=r"6 control types has no type 6; it knows auto, openpose"):
        union_residuals(union, call.x_in, call.timestep, call.context, hint, call.added_cond, 6)
